package cli

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/controlplane"
)

func newUpCmd() *cobra.Command {
	var (
		cfg      controlplane.Config
		logLevel string
	)
	c := &cobra.Command{
		Use:   "up",
		Short: "Start shoal on this machine with its embedded defaults",
		Long: "Start shoal's main job in one process: an embedded NATS server with JetStream " +
			"(data under --data), the Lambda REST API on --listen, and a local instance that runs " +
			"execution environments. Stop it with Ctrl-C or SIGTERM.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			logger := slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			out := c.OutOrStdout()
			if cfg.Isolate && os.Geteuid() != 0 {
				fmt.Fprintln(c.ErrOrStderr(), "warning: not running as root: environments run as plain processes without namespaces or cgroups")
			}
			fmt.Fprintln(out, "starting shoal")
			return controlplane.Run(ctxOf(c), cfg, controlplane.Deps{
				Logger:   logger,
				Progress: out,
				Ready: func(addr string) {
					fmt.Fprintf(out, "\nshoal is up: Lambda API on http://%s (data in %s)\n\n", addr, cfg.DataDir)
					fmt.Fprintf(out, "Deploy and invoke a function:\n")
					fmt.Fprintf(out, "  shoal fn create hello --runtime provided.al2023 --code ./pkg --endpoint-url http://%s\n", addr)
					fmt.Fprintf(out, "  shoal fn invoke hello --payload '{\"name\":\"world\"}' --endpoint-url http://%s\n", addr)
					fmt.Fprintf(out, "or use any AWS SDK or the aws CLI with --endpoint-url http://%s\n", addr)
				},
			})
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.DataDir, "data", ".shoal", "directory for shoal's state (functions, code, logs)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:9000", "address of the Lambda REST API")
	f.IntVar(&cfg.AccountConcurrency, "account-concurrency", 1000, "the account's concurrent-execution limit")
	f.DurationVar(&cfg.KeepAlive, "keep-alive", 10*time.Minute, "how long an idle on-demand environment is kept warm")
	f.BoolVar(&cfg.Isolate, "isolate", true, "run each environment in namespaces of its own (network included) under an unprivileged user of its own (root only)")
	f.StringVar(&cfg.Egress, "egress", "nat", "what environments reach: nat (the outside world through the host's NAT) or none")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight invocations may take to finish on stop")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	f.StringSliceVar(&cfg.Zones, "zones", nil, "zones the Managed Instances fleet spreads over (default REGIONa,b,c)")
	f.BoolVar(&cfg.NoMeter, "no-meter", os.Getenv("SHOAL_NO_METER") != "",
		"do not record usage (invocations, instance time) in the ledger (env SHOAL_NO_METER)")
	f.DurationVar(&cfg.LaunchDelay, "launch-delay", 0, "emulate an instance's boot time before its agent starts (e.g. 90s)")
	return c
}
