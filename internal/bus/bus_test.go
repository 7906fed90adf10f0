package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"
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

// TestStartUnwritableStore: a store the bus cannot write fails Start with
// the cause, instead of a server that never gets ready.
func TestStartUnwritableStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	if err := os.MkdirAll(filepath.Join(dir, "jetstream"), 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			t.Skipf("cannot bind-mount: %v", err)
		}
		t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
		if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Skipf("cannot make the bind mount read-only: %v", err)
		}
	} else {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	}
	b, err := Start(context.Background(), Config{DataDir: dir})
	if err == nil {
		b.Close()
		t.Fatal("Start succeeded")
	}
	if !strings.Contains(err.Error(), dir) || !(errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES)) {
		t.Fatalf("Start: %v, want the store and the cause", err)
	}
}

// TestWaitReadyReportsFatal: a server that reported a fatal error is not
// waited for.
func TestWaitReadyReportsFatal(t *testing.T) {
	ns, err := server.NewServer(&server.Options{DontListen: true})
	if err != nil {
		t.Fatal(err)
	}
	fatal := make(chan string, 1)
	fatal <- "Can't start JetStream: no space left on device"
	err = waitReady(ns, time.Hour, fatal)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("waitReady: %v", err)
	}
}

// TestRouteErrorsAreNotLoggedAtEveryTry: a node of a cluster retries the
// route to a node that is down every second; it logs that once a minute
// (NATS logs every failed reconnection by default: four lines a second with
// its pooled route connections).
func TestRouteErrorsAreNotLoggedAtEveryTry(t *testing.T) {
	alone := (&Config{DataDir: "d"}).serverOptions()
	node := (&Config{DataDir: "d", TLS: &TLS{Server: &tls.Config{}}, Cluster: &Cluster{Name: "c", Node: "n1",
		Listen: "127.0.0.1:6222", Routes: []string{"nats-route://127.0.0.2:6222"}}}).serverOptions()
	if alone.ReconnectErrorReports != 0 || node.ReconnectErrorReports != 60 || len(node.Routes) != 1 {
		t.Errorf("reconnect error reports: alone %d, in a cluster %d (routes %v); want NATS's default alone, 60 in a cluster",
			alone.ReconnectErrorReports, node.ReconnectErrorReports, node.Routes)
	}
}
