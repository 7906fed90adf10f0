// Command shoal runs AWS Lambda functions on your own fleet: on-demand, with
// Provisioned Concurrency, or on Managed Instances. Its subcommands are the product;
// main only wires signals and hands the arguments to internal/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-dev/shoal/internal/cli"
	"github.com/shoal-dev/shoal/internal/sched"
	"github.com/shoal-dev/shoal/internal/sysmon"
)

func main() {
	// The long-running servers (the control plane and the agents) restart
	// themselves once with the runtime's monitor tuned; see internal/sysmon.
	if len(os.Args) > 1 && (os.Args[1] == "up" || os.Args[1] == "agent") {
		if err := sysmon.Reexec(); err != nil {
			fmt.Fprintln(os.Stderr, "shoal: running with Go's default system monitor:", err)
		}
		// They also run under SCHED_BATCH, as their environments do; see
		// internal/sched. Set after the re-execution, so it is done once.
		if sched.Enabled() {
			if err := sched.BatchProcess(); err != nil {
				fmt.Fprintln(os.Stderr, "shoal: running under the usual scheduling policy:", err)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
