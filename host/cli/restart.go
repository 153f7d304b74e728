package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/instance"
)

func newRestartCommand() *cobra.Command {
	var seconds int
	c := &cobra.Command{
		Use:   "restart [flags] UNIKERNEL...",
		Short: "Stop unikernels (as pith stop does) and start them again",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return eachRef(args, func(store *instance.Store, inst *instance.Instance) error {
				if err := stopInstance(store, inst, time.Duration(seconds)*time.Second); err != nil {
					return err
				}
				return startInstance(store, inst)
			})
		},
	}
	c.Flags().IntVarP(&seconds, "time", "t", 10, "seconds to wait for the app to exit before killing it")
	return c
}
