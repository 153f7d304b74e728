package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/instance"
)

func newKillCommand() *cobra.Command {
	var signal string
	c := &cobra.Command{
		Use:   "kill [flags] UNIKERNEL...",
		Short: "Send a signal to running unikernels (default SIGKILL)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			sig, err := parseSignal(signal)
			if err != nil {
				return err
			}
			return eachRef(args, func(store *instance.Store, inst *instance.Instance) error {
				return killInstance(store, inst, sig)
			})
		},
	}
	c.Flags().StringVarP(&signal, "signal", "s", "KILL", "the signal: its name (TERM, SIGUSR1) or number")
	return c
}

// killInstance sends sig to the unikernel: SIGKILL ends its monitor, and so the guest;
// any other the monitor passes to the app. As in Docker, the unikernel must be running,
// and a signal that ends it is a manual stop: its restart policy does not start it again.
func killInstance(store *instance.Store, inst *instance.Instance, sig unix.Signal) error {
	pid := monitorPID(store, inst)
	if pid == 0 {
		return fmt.Errorf("cannot kill %s: it is not running", inst.Config.Name)
	}
	switch sig {
	case unix.SIGKILL, unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP:
		if err := inst.StopRequested(); err != nil {
			return err
		}
	}
	if err := unix.Kill(pid, sig); err != nil {
		return fmt.Errorf("cannot kill %s: %v", inst.Config.Name, err)
	}
	if sig == unix.SIGKILL && waitGone(inst, 10*time.Second) {
		store.Reload(inst) // records the exit of the killed monitor
	}
	return nil
}
