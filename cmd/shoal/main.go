// Command shoal runs AWS Lambda functions on your own fleet: on-demand, with
// Provisioned Concurrency, or on Managed Instances. Its subcommands are the product;
// main only wires signals and hands the arguments to internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-dev/shoal/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
