package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// External names a NATS cluster that someone else runs, which shoal uses
// instead of its embedded server (shoal up --nats). Its accounts and
// permissions are the operator's: shoal authenticates with a NATS user
// credentials file and cannot confine an agent to its own subjects there.
type External struct {
	// URLs are the servers' client URLs (nats:// or tls://).
	URLs []string
	// CredsFile is a NATS user credentials file (a user JWT and its nkey
	// seed, as `nsc` writes them); "" connects without credentials.
	CredsFile string
	// CAFile is a PEM file of the authorities the servers' certificates are
	// checked against ("" is the system's).
	CAFile string
}

// Validate checks the configuration.
func (e *External) Validate() error {
	if len(e.URLs) == 0 {
		return errors.New("bus: an external NATS needs at least one URL")
	}
	for _, u := range e.URLs {
		if !strings.Contains(u, "://") {
			return fmt.Errorf("bus: NATS URL %q: want nats://host:port or tls://host:port", u)
		}
	}
	return nil
}

// Options are the connection options of e: its credentials and authorities.
func (e *External) Options() []nats.Option {
	var opts []nats.Option
	if e.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(e.CredsFile))
	}
	if e.CAFile != "" {
		opts = append(opts, nats.RootCAs(e.CAFile))
	}
	return opts
}

// URL is e's URLs as one nats.Connect address.
func (e *External) URL() string { return strings.Join(e.URLs, ",") }

// Dial connects to an external NATS cluster (WaitJetStream then waits for
// its JetStream). The Bus it returns runs no server: Close closes the
// connection only.
func Dial(ext External, logger *slog.Logger) (*Bus, error) {
	if err := ext.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "bus")
	opts := append([]nats.Option{nats.Name(ControlPlane), nats.Timeout(5 * time.Second)}, ext.Options()...)
	nc, js, err := Connect(ext.URL(), opts...)
	if err != nil {
		return nil, err
	}
	b := &Bus{nc: nc, js: js, log: logger, ext: &ext}
	logger.Info("connected to an external NATS", "server", nc.ConnectedServerName(),
		"cluster", nc.ConnectedClusterName(), "servers", len(nc.Servers()))
	return b, nil
}

// External reports whether b is a connection to someone else's NATS
// rather than an embedded server.
func (b *Bus) External() bool { return b.ext != nil }

// ExternalReplicas is how many copies to keep on an external NATS: three
// when the connection knows of three servers or more (the ones given and
// those the cluster told of), else one.
func (b *Bus) ExternalReplicas() int {
	return min(3, max(1, len(b.nc.Servers())))
}
