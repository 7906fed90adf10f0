package cli

import "github.com/spf13/cobra"

func newFnCmd() *cobra.Command {
	return &cobra.Command{Use: "fn", Short: "Manage and invoke functions"}
}
