package wire

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
)

// TestHandshake: a client and an agent that hold the same key talk; a
// client without it, or with another agent's, gets nothing through, and a
// server without the key gets no invocation from a client that has it.
func TestHandshake(t *testing.T) {
	key, other := []byte("the agent's key"), []byte("another agent's key")
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	invoked := make(chan string, 8)
	srv := NewServer(HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		invoked <- inv.RequestID
		return env.Result{Payload: []byte("ok")}, nil
	}), nil, key)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c, err := Dial(context.Background(), "unix", path, key)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if res, err := c.Invoke(context.Background(), "e", env.Invocation{RequestID: "right"}); err != nil || string(res.Payload) != "ok" {
		t.Fatalf("with the key: %v %q", err, res.Payload)
	}

	if _, err := Dial(context.Background(), "unix", path, other); !errors.Is(err, ErrAuth) {
		t.Fatalf("with another key: %v, want ErrAuth", err)
	}
	// A client that skips the handshake has its frames read as a failed
	// hello and is disconnected.
	plain, err := Dial(context.Background(), "unix", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := plain.Invoke(ctx, "e", env.Invocation{RequestID: "sneaky", Payload: make([]byte, 64)}); err == nil {
		t.Fatal("an invocation without the key went through")
	}
	plain.Close()

	// A server that cannot prove the key gets nothing from a client.
	path2 := socketPath(t)
	ln2, err := net.Listen("unix", path2)
	if err != nil {
		t.Fatal(err)
	}
	impostor := NewServer(HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		invoked <- "impostor:" + inv.RequestID
		return env.Result{}, nil
	}), nil, other)
	go impostor.Serve(ln2)
	t.Cleanup(func() { impostor.Close() })
	if _, err := Dial(context.Background(), "unix", path2, key); !errors.Is(err, ErrAuth) {
		t.Fatalf("dialling a server with another key: %v, want ErrAuth", err)
	}

	close(invoked)
	var got []string
	for id := range invoked {
		got = append(got, id)
	}
	if len(got) != 1 || got[0] != "right" {
		t.Fatalf("invocations that reached a handler: %v, want only the one with the key", got)
	}
}
