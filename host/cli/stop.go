package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/instance"
)

func newStopCommand() *cobra.Command {
	var seconds int
	c := &cobra.Command{
		Use:   "stop [flags] UNIKERNEL...",
		Short: "Stop unikernels: SIGTERM to the app, SIGKILL after a timeout",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return eachRef(args, func(store *instance.Store, inst *instance.Instance) error {
				return stopInstance(store, inst, time.Duration(seconds)*time.Second)
			})
		},
	}
	c.Flags().IntVarP(&seconds, "time", "t", 10, "seconds to wait for the app to exit before killing it")
	return c
}
