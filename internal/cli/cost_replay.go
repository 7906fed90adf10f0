package cli

import "github.com/spf13/cobra"

func newCostReplayCmd() *cobra.Command {
	return &cobra.Command{Use: "replay", Short: "Replay a traffic trace through every compute type"}
}
