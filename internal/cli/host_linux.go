//go:build linux

package cli

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/host"
)

// newHostCmd is `shoal host`: a machine that offers capacity to a cluster.
func newHostCmd() *cobra.Command {
	var (
		cfg      host.Config
		logLevel string
	)
	c := &cobra.Command{
		Use:   "host",
		Short: "Offer this machine's capacity to a shoal cluster",
		Long: `Join a shoal cluster as a host: this machine runs the Managed Instances
instances the cluster's leader places on it, in its zone, and their agents serve
invocations to every node. It needs the cluster's NATS URLs (--join) and a copy
of its secret (--cluster-secret). See docs/cluster.md.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			logger := slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			out := c.OutOrStdout()
			return host.Run(ctxOf(c), cfg, logger, func() {
				fmt.Fprintf(out, "shoal host %s is up in zone %s, joined to %v\n", cfg.Name, cfg.Zone, cfg.Join)
			})
		},
	}
	f := c.Flags()
	f.StringSliceVar(&cfg.Join, "join", nil, "the cluster's NATS URLs, nats://node:4222,...")
	f.StringVar(&cfg.SecretFile, "cluster-secret", "", "file of the cluster's secret, copied from its first node")
	f.StringVar(&cfg.NATSCreds, "nats-creds", "", "NATS user credentials file, when the cluster runs on an external NATS (shoal up --nats)")
	f.StringVar(&cfg.NATSCA, "nats-ca", "", "PEM file of the authorities of an external NATS's certificates")
	f.BoolVar(&cfg.ExternalNATS, "external-nats", false, "--join lists an external NATS that asks for no credentials (implied by --nats-creds)")
	f.StringVar(&cfg.Name, "name", "", "this host's name in the cluster")
	f.StringVar(&cfg.Zone, "zone", "", "this machine's availability zone")
	f.StringVar(&cfg.Advertise, "advertise", "", "the address the cluster's nodes reach this machine at")
	f.IntVar(&cfg.VCPU, "vcpus", 0, "vCPUs offered (default all)")
	f.IntVar(&cfg.MemoryMB, "memory", 0, "memory offered, MiB (default all)")
	f.StringVar(&cfg.DataDir, "data", ".shoal-host", "directory for the instances and the usage journal")
	f.BoolVar(&cfg.Isolate, "isolate", os.Geteuid() == 0, "confine instances to cgroups (root)")
	f.StringSliceVar(&cfg.EgressDeny, "egress-deny", nil, "addresses and ranges environments never reach, e.g. the cluster's network 198.18.0.0/24 (the --join machines and the cluster's hosts are added)")
	f.DurationVar(&cfg.Heartbeat, "heartbeat", time.Second, "heartbeat interval")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	return c
}
