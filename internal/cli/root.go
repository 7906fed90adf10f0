// Package cli holds shoal's command tree. Every command is a thin layer: it parses
// flags and calls the Run function of the package that does the work, or, for
// client commands, speaks the Lambda REST API like any AWS client would.
package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Main runs the shoal command line with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := NewRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "shoal:", describe(err))
		if hint := authHint(err); hint != "" {
			fmt.Fprintln(stderr, "shoal:", hint)
		}
		var ec exitCoder
		if asExitCoder(err, &ec) {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}

// NewRoot builds the whole command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "shoal",
		Short:         "Run AWS Lambda functions on your own fleet",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newUpCmd(),
		newFnCmd(),
		newCostCmd(),
		newAgentCmd(),
		newCPCmd(),
		newFleetCmd(),
		newTopCmd(),
		newHostCmd(),
		newClusterCmd(),
		newVersionCmd(),
	)
	return root
}

type exitCoder interface{ ExitCode() int }

func asExitCoder(err error, target *exitCoder) bool {
	for err != nil {
		if ec, ok := err.(exitCoder); ok {
			*target = ec
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}
