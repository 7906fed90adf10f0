package fleet

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/wire"
)

func servePool(t *testing.T, path, tag string) *wire.Server {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := wire.NewServer(wire.HandlerFunc(func(_ context.Context, envID string, inv env.Invocation) (env.Result, error) {
		return env.Result{Payload: []byte(tag + ":" + envID)}, nil
	}), nil, nil)
	go srv.Serve(ln)
	return srv
}

func TestPoolSharesAndRedials(t *testing.T) {
	dir, err := os.MkdirTemp("", "pool")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	srv := servePool(t, path, "first")
	p := NewPool(nil)
	defer p.Close()
	in := Instance{ID: "i-1", InvokeNetwork: "unix", InvokeAddr: path}
	ctx := context.Background()

	// Concurrent callers share one connection.
	var wg sync.WaitGroup
	conns := make([]*wire.Conn, 16)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], _ = p.Conn(ctx, in)
		}()
	}
	wg.Wait()
	for _, c := range conns {
		if c == nil || c != conns[0] {
			t.Fatal("callers got different connections")
		}
	}
	res, err := p.Invoke(ctx, in, "e", env.Invocation{})
	if err != nil || string(res.Payload) != "first:e" {
		t.Fatalf("%s %v", res.Payload, err)
	}

	// The agent restarts: the call in between fails, the next one dials again.
	srv.Close()
	<-conns[0].Done()
	os.Remove(path)
	if _, err := p.Invoke(ctx, in, "e", env.Invocation{}); err == nil {
		t.Fatal("invoke with the agent gone succeeded")
	}
	srv2 := servePool(t, path, "second")
	defer srv2.Close()
	res, err = p.Invoke(ctx, in, "e", env.Invocation{})
	if err != nil || string(res.Payload) != "second:e" {
		t.Fatalf("after restart: %s %v", res.Payload, err)
	}

	// No address yet, and after Close.
	if _, err := p.Conn(ctx, Instance{ID: "i-2"}); err == nil {
		t.Error("dialled an instance without an address")
	}
	p.Forget("i-1")
	p.Close()
	if _, err := p.Conn(ctx, in); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("after close: %v", err)
	}
}
