package bus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestExternalValidate(t *testing.T) {
	for _, tt := range []struct {
		ext External
		ok  bool
	}{
		{External{}, false},
		{External{URLs: []string{"127.0.0.1:4222"}}, false},
		{External{URLs: []string{"nats://127.0.0.1:4222", "tls://n2:4222"}, CredsFile: "x.creds"}, true},
	} {
		if err := tt.ext.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: %v", tt.ext, err)
		}
	}
}

// TestDial: a Bus dialled to a NATS it does not run uses that NATS's
// JetStream, names no server of its own, and closing it leaves the server
// running.
func TestDial(t *testing.T) {
	ctx := context.Background()
	other, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	b, err := Dial(External{URLs: []string{other.ClientURL()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WaitJetStream(ctx, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if !b.External() || b.ServerName() != "" || b.ExternalReplicas() != 1 || b.ClientURL() != other.ClientURL() {
		t.Errorf("External %t, ServerName %q, ExternalReplicas %d, ClientURL %q", b.External(), b.ServerName(), b.ExternalReplicas(), b.ClientURL())
	}
	if m := b.Meta(); m.Size != 1 || len(m.Peers) != 1 || !m.Peers[0].Current {
		t.Errorf("Meta %+v", m)
	}
	kv, err := b.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "dialled"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	// The server and what was written through the dialled bus remain.
	kv, err = other.JetStream().KeyValue(ctx, "dialled")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
		t.Fatalf("after the dialled bus closed: %v", err)
	}
}
