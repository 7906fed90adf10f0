package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/sigv4"
)

func TestClusterConfigValidate(t *testing.T) {
	ext := func() *bus.External { return &bus.External{URLs: []string{"nats://n1:4222"}, CredsFile: "u.creds"} }
	for _, tt := range []struct {
		name string
		cfg  ClusterConfig
		err  string // "" when valid
	}{
		{"embedded", ClusterConfig{Name: "lab", Listen: "0.0.0.0:6222", NATSListen: "0.0.0.0:4222", Advertise: "10.0.0.1",
			Routes: []string{"nats-route://10.0.0.2:6222"}}, ""},
		{"embedded without a name", ClusterConfig{Listen: "0.0.0.0:6222", NATSListen: "0.0.0.0:4222", Advertise: "10.0.0.1"}, "a name is required"},
		{"without an address", ClusterConfig{Name: "lab", Listen: "0.0.0.0:6222", NATSListen: "0.0.0.0:4222"}, "--advertise"},
		{"a bad route", ClusterConfig{Name: "lab", Listen: "0.0.0.0:6222", NATSListen: "0.0.0.0:4222", Advertise: "10.0.0.1",
			Routes: []string{"10.0.0.2"}}, "route"},
		{"external, no name needed, listeners unused", ClusterConfig{External: ext(), Listen: "0.0.0.0:6222", NATSListen: "bad", Advertise: "10.0.0.1"}, ""},
		{"external with routes", ClusterConfig{External: ext(), Advertise: "10.0.0.1", Routes: []string{"nats-route://10.0.0.2:6222"}}, "--routes"},
		{"external without a URL", ClusterConfig{External: &bus.External{}, Advertise: "10.0.0.1"}, "URL"},
		{"a host without a zone", ClusterConfig{External: ext(), Advertise: "10.0.0.1", Host: true}, "zone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.validate()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one about %q", err, tt.err)
			}
			if tt.err == "" && cfg.Node != cfg.Advertise {
				t.Errorf("node %q, want the advertised address", cfg.Node)
			}
			if tt.err == "" && cfg.External != nil && (cfg.Listen != "" || cfg.NATSListen != "") {
				t.Errorf("an external NATS leaves listeners %q %q", cfg.Listen, cfg.NATSListen)
			}
		})
	}
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestClusterNodeWritesKeysBeforeWaiting: the first node of a cluster writes
// the cluster's secret and the API's credentials file before it waits for the
// other nodes, so that both can be copied to them before they start (a node
// that wrote its keys only once the cluster formed made every other node
// write keys of its own).
func TestClusterNodeWritesKeysBeforeWaiting(t *testing.T) {
	dir := t.TempDir()
	addr := func() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))) }
	cfg := Config{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		URLListen: "127.0.0.1:0",
		Cluster: &ClusterConfig{Name: "c", Listen: addr(), NATSListen: addr(), Advertise: "127.0.0.1",
			// The other nodes are not there: the node waits for them.
			Routes: []string{"nats-route://" + addr(), "nats-route://" + addr()}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		s, err := Start(ctx, cfg, Deps{})
		if err == nil {
			_ = s.Close()
			err = errors.New("a node alone started")
		}
		done <- err
	}()
	for _, name := range []string{SecretFile, "credentials"} {
		path := filepath.Join(cfg.DataDir, name)
		poll.Until(t, time.Minute, func() error {
			select {
			case err := <-done:
				t.Fatalf("Start returned before %s was written: %v", name, err)
			default:
			}
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("while the node waits for the others: %w", err)
			}
			return nil
		})
	}
	keys, err := sigv4.OpenKeys(filepath.Join(cfg.DataDir, "credentials"), nil)
	if err != nil || len(keys.All()) != 1 {
		t.Fatalf("credentials: %v (%v)", keys, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Start returned while the other nodes are missing: %v", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Start after its context ended: %v", err)
	}
}
