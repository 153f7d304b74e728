package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/instance"
)

func newRmCommand() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rm [flags] UNIKERNEL...",
		Short: "Remove unikernels that are not running, and their state and logs",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return eachRef(args, func(store *instance.Store, inst *instance.Instance) error {
				return removeInstance(store, inst, force)
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "kill a running one (SIGKILL) and remove it")
	return c
}

func removeInstance(store *instance.Store, inst *instance.Instance, force bool) error {
	if inst.Live() {
		if !force {
			return fmt.Errorf("cannot remove %s: it is running: stop it first (pith stop %s) or use rm -f", inst.Config.Name, inst.Config.Name)
		}
		if err := killInstance(store, inst, unix.SIGKILL); err != nil && inst.Live() {
			return err
		}
		if !waitGone(inst, 10*time.Second) {
			return fmt.Errorf("cannot remove %s: its monitor did not end after SIGKILL", inst.Config.Name)
		}
	}
	lk, err := inst.TryLock()
	if errors.Is(err, os.ErrNotExist) {
		return nil // removed as it ended (--rm)
	}
	if err != nil {
		return fmt.Errorf("cannot remove %s: it was started again meanwhile", inst.Config.Name)
	}
	defer lk.Release()
	return store.Remove(inst)
}
