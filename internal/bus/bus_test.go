package bus

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := Start(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.ClientURL(); got != "" {
		t.Errorf("ClientURL without listener = %q, want empty", got)
	}
	kv, err := b.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "t", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b, err = Start(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kv, err = b.JetStream().KeyValue(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value()) != "v" {
		t.Fatalf("value after restart = %q, want v", e.Value())
	}
}

func TestRemoteConnect(t *testing.T) {
	ctx := context.Background()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	url := b.ClientURL()
	if url == "" {
		t.Fatal("no client URL with a listener")
	}
	nc, js, err := Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := b.Conn().SubscribeSync("hello")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("hello", []byte("world")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5e9)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "world" {
		t.Fatalf("got %q", msg.Data)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("remote JetStream: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{DataDir: "/x"}, true},
		{"no dir", Config{}, false},
		{"bad listen", Config{DataDir: "/x", Listen: "nope"}, false},
		{"listen", Config{DataDir: "/x", Listen: "127.0.0.1:0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
