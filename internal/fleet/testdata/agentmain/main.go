// Command agentmain runs agent.Run with the flags of `shoal agent`, for
// the fleet tests when the shoal binary has no agent command.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-dev/shoal/internal/agent"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "agent" {
		args = args[1:]
	}
	var cfg agent.Config
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	fs.StringVar(&cfg.NATSURL, "nats", "", "")
	fs.StringVar(&cfg.NATSCreds, "nats-creds", "", "")
	fs.StringVar(&cfg.ID, "id", "", "")
	fs.StringVar(&cfg.CapacityProvider, "capacity-provider", "", "")
	fs.StringVar(&cfg.Type, "type", "m7i.large", "")
	fs.StringVar(&cfg.Zone, "zone", "us-east-1a", "")
	fs.StringVar(&cfg.Socket, "socket", "", "")
	fs.StringVar(&cfg.Listen, "listen", "", "")
	fs.StringVar(&cfg.WorkDir, "work", "", "")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", 0, "")
	fs.Float64Var(&cfg.CPUThreshold, "cpu-threshold", 0, "")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := agent.Run(ctx, cfg, agent.Deps{Logger: logger}); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}
