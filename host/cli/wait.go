package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
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
	store, err := openStore()
	if err != nil {
		return err
	}
	failed := false
	for _, ref := range refs {
		inst, err := store.Get(ref)
		if err == nil {
			for inst.Live() {
				time.Sleep(50 * time.Millisecond)
			}
			inst, err = store.Reload(inst)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "pith: %v\n", err)
			failed = true
			continue
		}
		fmt.Println(inst.State.ExitCode)
	}
	if failed {
		return statusError(1)
	}
	return nil
}
