//go:build linux

package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/controlplane"
	"github.com/shoal-dev/shoal/internal/registry"
)

func newUpCmd() *cobra.Command {
	var (
		cfg      controlplane.Config
		logLevel string
		cluster  clusterFlags
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
			if cfg.Auth == controlplane.AuthNone {
				fmt.Fprintf(c.ErrOrStderr(), "warning: --auth none: the API accepts every request, signed or not: "+
					"anyone who can reach %s can deploy and run code\n", cfg.Listen)
			}
			cluster.apply(&cfg)
			fmt.Fprintln(out, "starting shoal")
			return controlplane.Run(ctxOf(c), cfg, controlplane.Deps{
				Logger:   logger,
				Progress: out,
				Ready: func(s *controlplane.Server) {
					creds, _ := s.CredentialsFile()
					printBanner(out, banner{addr: s.Addr(), metricsAddr: s.MetricsAddr(), dataDir: cfg.DataDir,
						credentials: creds, region: regionOf(cfg)})
				},
			})
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.DataDir, "data", ".shoal", "directory for shoal's state (functions, code, logs)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:9000", "address of the Lambda REST API")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", controlplane.DefaultMetricsListen,
		"address of the Prometheus endpoint (/metrics), which answers without a signature")
	f.StringVar(&cfg.Auth, "auth", controlplane.AuthSigV4,
		"who may call the API: sigv4 (requests signed with a key of --credentials) or none (anyone)")
	f.StringVar(&cfg.CredentialsFile, "credentials", "",
		"AWS shared-credentials file of the keys the API accepts, written with a fresh key when missing (default DATA/credentials)")
	f.StringVar(&cfg.URLListen, "url-listen", controlplane.DefaultURLListen, "address function URLs are served on (by host name <url-id>.lambda-url.REGION.on.aws, or by the path /<url-id>/)")
	f.IntVar(&cfg.AccountConcurrency, "account-concurrency", 1000, "the account's concurrent-execution limit")
	f.DurationVar(&cfg.KeepAlive, "keep-alive", 10*time.Minute, "how long an idle on-demand environment is kept warm")
	f.BoolVar(&cfg.Isolate, "isolate", true, "run each environment in namespaces of its own (network included) under an unprivileged user of its own (root only)")
	f.StringVar(&cfg.Egress, "egress", "nat", "what environments reach: nat (the outside world through the host's NAT) or none")
	f.StringSliceVar(&cfg.EgressDeny, "egress-deny", nil, "addresses and ranges environments never reach, e.g. the cluster's network 198.18.0.0/24 (a cluster's nodes, hosts and NATS servers are added)")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight invocations may take to finish on stop")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	f.StringSliceVar(&cfg.Zones, "zones", []string{"us-east-1a", "us-east-1b", "us-east-1c"}, "zones the Managed Instances fleet spreads over")
	f.BoolVar(&cfg.NoMeter, "no-meter", os.Getenv("SHOAL_NO_METER") != "",
		"do not record usage (invocations, instance time) in the ledger (env SHOAL_NO_METER)")
	f.DurationVar(&cfg.LaunchDelay, "launch-delay", 0, "emulate an instance's boot time before its agent starts (e.g. 90s)")
	f.Var(lifetimeFlag{&cfg.MaxInstanceLifetime}, "max-instance-lifetime",
		"how long a Managed Instances instance runs before it is replaced, e.g. 14d or 72h; a capacity provider's tag "+
			registry.MaxInstanceLifetimeTag+" sets its own (default 14d)")
	f.Var(retentionFlag{&cfg.UsageRetention}, "usage-retention",
		"how long the usage ledger keeps its events, e.g. 90d or 2160h; 0 keeps them for ever (default 400d)")
	f.DurationVar(&cfg.AsyncRetryDelay, "async-retry-delay", time.Minute,
		"wait before retrying an asynchronous event after a function error (the second retry waits twice as long)")
	cluster.add(f)
	return c
}

// credentialEnv are the variables that take precedence over a credentials file
// in the AWS SDKs and the aws CLI.
var credentialEnv = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"}

// banner is what the start banner tells.
type banner struct {
	addr, metricsAddr, dataDir string
	// credentials is the credentials file of the accepted keys, "" with --auth none.
	credentials string
	region      string
}

// printBanner says where shoal listens and how to call it.
func printBanner(out io.Writer, b banner) {
	addr := b.addr
	fmt.Fprintf(out, "\nshoal is up: Lambda API on http://%s (data in %s)\n\n", addr, b.dataDir)
	if path := b.credentials; path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		fmt.Fprintf(out, "The API takes requests signed with a key of %s. In another terminal:\n", path)
		fmt.Fprintf(out, "  export AWS_SHARED_CREDENTIALS_FILE=%s AWS_DEFAULT_REGION=%s\n", path, b.region)
		var set []string
		for _, v := range credentialEnv {
			if os.Getenv(v) != "" {
				set = append(set, v)
			}
		}
		if len(set) > 0 {
			fmt.Fprintf(out, "  unset %s   # they take precedence over the file\n", strings.Join(set, " "))
		}
	} else {
		fmt.Fprintf(out, "The API takes any request (--auth none).\n")
	}
	fmt.Fprintf(out, "Deploy and invoke a function:\n")
	fmt.Fprintf(out, "  shoal fn create hello --runtime provided.al2023 --code ./pkg --endpoint-url http://%s\n", addr)
	fmt.Fprintf(out, "  shoal fn invoke hello --payload '{\"name\":\"world\"}' --endpoint-url http://%s\n", addr)
	fmt.Fprintf(out, "or use any AWS SDK or the aws CLI with --endpoint-url http://%s\n", addr)
	fmt.Fprintf(out, "Prometheus metrics: http://%s/metrics\n", b.metricsAddr)
}

func regionOf(cfg controlplane.Config) string {
	if cfg.Region != "" {
		return cfg.Region
	}
	return "us-east-1"
}

// retentionFlag is --usage-retention: a duration, whole days (400d), or 0
// for ever (stored as a negative duration; unset is 0, the default).
type retentionFlag struct{ d *time.Duration }

func (f retentionFlag) String() string {
	switch {
	case f.d == nil || *f.d == 0:
		return "400d"
	case *f.d < 0:
		return "0"
	}
	return f.d.String()
}

func (f retentionFlag) Set(s string) error {
	if s == "0" {
		*f.d = -1
		return nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 && n <= maxDaysAgo {
			*f.d = time.Duration(n) * 24 * time.Hour
			return nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q: want a duration such as 90d or 2160h, or 0 to keep every event", s)
	}
	*f.d = d
	return nil
}

func (retentionFlag) Type() string { return "duration" }

// lifetimeFlag is --max-instance-lifetime: a duration or whole days (14d).
type lifetimeFlag struct{ d *time.Duration }

func (f lifetimeFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return "14d"
	}
	return f.d.String()
}

func (f lifetimeFlag) Set(s string) error {
	d, err := registry.ParseLifetime(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func (lifetimeFlag) Type() string { return "duration" }
