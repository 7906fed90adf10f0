package bus

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/pki"
)

// A cluster of one node, with no routes to others, serves JetStream at once
// (R1), as a node that hosts join.
func TestClusterOfOneNode(t *testing.T) {
	secret := Secret("thirty-two bytes of test secret!")
	ca, err := pki.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("node.one", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	// The routes' port must be a real one: port 0 turns NATS clustering off.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	routes := ln.Addr().String()
	ln.Close()
	cfg := Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Secret: secret,
		TLS:     &TLS{Server: ca.ServerConfig(cert)},
		Cluster: &Cluster{Name: "one", Node: "one", Listen: routes}}
	if got := cfg.Replicas(); got != 1 {
		t.Fatalf("replicas of a cluster of one: %d, want 1", got)
	}
	b, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.WaitJetStream(ctx, 30*time.Second, func(err error) { t.Logf("waiting: %v", err) }); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "one", Replicas: cfg.Replicas()}); err != nil {
		t.Fatal(err)
	}
	if got := b.ServerName(); got != "one" {
		t.Errorf("server name %q, want the node's", got)
	}
}
