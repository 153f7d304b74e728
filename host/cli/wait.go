package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/instance"
)

func newWaitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait UNIKERNEL...",
		Short: "Wait for unikernels to exit and print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(_ *cobra.Command, args []string) error { return runWait(args) },
	}
}

func runWait(refs []string) error {
	store, err := openInstances()
	if err != nil {
		return err
	}
	failed := false
	for _, ref := range refs {
		code, err := waitFor(store, ref)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pith: %v\n", err)
			failed = true
			continue
		}
		fmt.Println(code)
	}
	if failed {
		return statusError(1)
	}
	return nil
}

// waitFor waits until the unikernel ref names has exited and returns its exit code. One
// run with --rm is held from removal (HoldWait) until its final state is read.
func waitFor(store *instance.Store, ref string) (int, error) {
	inst, err := store.Get(ref)
	if err != nil {
		return 0, err
	}
	if inst.Config.AutoRemove {
		if hold, err := inst.HoldWait(); err == nil {
			defer hold.Release()
		}
		for {
			st, err := inst.ReadState()
			if err != nil {
				break // removed: its monitor was killed (or had already ended)
			}
			if st.Status == instance.StatusExited && st.Pid == 0 {
				return st.ExitCode, nil
			}
			if !inst.Live() {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for inst.Live() {
		time.Sleep(50 * time.Millisecond)
	}
	if inst, err = store.Reload(inst); err != nil {
		return 0, err
	}
	return inst.State.ExitCode, nil
}
