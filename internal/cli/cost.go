package cli

import "github.com/spf13/cobra"

func newCostCmd() *cobra.Command {
	c := &cobra.Command{Use: "cost", Short: "Compare what a workload costs on each compute type"}
	c.AddCommand(newCostReplayCmd())
	return c
}
