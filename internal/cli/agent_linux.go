//go:build linux

package cli

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/pki"
)

// newAgentCmd is `shoal agent`: the daemon of one Managed Instances instance.
func newAgentCmd() *cobra.Command {
	var cfg agent.Config
	var verbose bool
	var tlsDir string
	var ext bus.External
	var external bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run an instance agent: host execution environments for the control plane",
		Long: `Run the agent of one Managed Instances instance. It connects to the control
plane's NATS, heartbeats its state on shoal.fleet.hb.<id>, answers commands on
shoal.agent.<id>.cmd and serves invocations on --socket (or --listen for TCP).
The local fleet of 'shoal up' starts one per instance; on other hosts, run it
with the control plane's NATS address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			if cfg.WorkDir != "" {
				abs, err := filepath.Abs(cfg.WorkDir)
				if err != nil {
					return err
				}
				cfg.WorkDir = abs
			}
			if tlsDir != "" {
				cfg.TLS = pki.InDir(tlsDir)
			}
			if external {
				ext.URLs = strings.Split(cfg.NATSURL, ",")
				cfg.External = &ext
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			return agent.Run(cmd.Context(), cfg, agent.Deps{Logger: logger})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.NATSURL, "nats", os.Getenv("SHOAL_NATS_URL"), "NATS URL of the control plane (env SHOAL_NATS_URL)")
	f.StringVar(&cfg.NATSCreds, "nats-creds", "", "file of the agent's bus credentials, which the control plane writes")
	f.BoolVar(&external, "external-nats", false, "the bus is a NATS someone else runs (shoal up --nats), reached with --nats-user-creds and --nats-ca")
	f.StringVar(&ext.CredsFile, "nats-user-creds", "", "NATS user credentials file of an external NATS")
	f.StringVar(&ext.CAFile, "nats-ca", "", "PEM file of the authorities of an external NATS's certificates")
	f.StringVar(&tlsDir, "tls-dir", "", "directory of the agent's TLS certificate, key and cluster authority (tls.crt, tls.key, ca.crt), which its host writes")
	f.StringVar(&cfg.ID, "id", "", "instance id")
	f.StringVar(&cfg.CapacityProvider, "capacity-provider", "", "capacity provider the instance belongs to")
	f.StringVar(&cfg.Type, "type", "m7i.large", "instance type (from the price catalogue)")
	f.StringVar(&cfg.Zone, "zone", "us-east-1a", "availability zone label")
	f.StringVar(&cfg.Socket, "socket", "", "Unix socket to serve invocations on")
	f.StringVar(&cfg.Listen, "listen", "", "TCP host:port to serve invocations on (instead of --socket)")
	f.StringVar(&cfg.WorkDir, "work", "", "work directory for code and environments")
	f.DurationVar(&cfg.Heartbeat, "heartbeat", time.Second, "heartbeat interval")
	f.Float64Var(&cfg.CPUThreshold, "cpu-threshold", 0.9, "refuse invocations above this CPU utilisation (0..1; above 1 disables)")
	f.BoolVar(&cfg.NoMeter, "no-meter", false, "do not record invocations in the usage ledger")
	f.BoolVar(&cfg.Isolate, "isolate", false, "run environments in namespaces under an unprivileged user (root)")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	for _, name := range []string{"id", "capacity-provider", "work"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
