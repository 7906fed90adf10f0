package cli

import "github.com/spf13/cobra"

func newUpCmd() *cobra.Command {
	return &cobra.Command{Use: "up", Short: "Start shoal on this machine with its embedded defaults"}
}
