package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/instance"
)

func newStartCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "start UNIKERNEL...",
		Short: "Start stopped unikernels again, as they were first run",
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(_ *cobra.Command, args []string) error { return eachRef(args, startInstance) },
	}
}

// startInstance starts a unikernel that is not running with its configuration; one that
// runs is left alone, as Docker does.
func startInstance(store *instance.Store, inst *instance.Instance) error {
	lk, err := inst.TryLock()
	if errors.Is(err, instance.ErrLocked) {
		return nil // running
	}
	if err != nil {
		return err
	}
	return startMonitor(store, inst, lk)
}
