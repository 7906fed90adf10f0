package wire

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/pki"
)

// TestTLS: an agent served on TLSListener and a client that dials it with
// DialTLS, both with certificates of the cluster's authority and the
// agent's key, carry concurrent invocations of every size; a client with a
// certificate of another authority gets no connection.
func TestTLS(t *testing.T) {
	ca, err := pki.New([]byte("thirty-two bytes of test secret!"))
	if err != nil {
		t.Fatal(err)
	}
	agentCert, err := ca.Issue("agent.i-1", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	nodeCert, err := ca.Issue("node.n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("the agent's key")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(echo(), nil, key)
	go srv.Serve(TLSListener(ln, ca.ServerConfig(agentCert)))
	t.Cleanup(func() { srv.Close() })

	c, err := DialTLS(context.Background(), "tcp", ln.Addr().String(), key, ca.ClientConfig(nodeCert))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			payload := make([]byte, i*i*64) // up to 254 KB: records of every size
			for j := range payload {
				payload[j] = byte(i + j)
			}
			id := fmt.Sprint("req-", i)
			res, err := c.Invoke(context.Background(), "env-1", env.Invocation{RequestID: id, Payload: payload})
			switch {
			case err != nil:
				errs <- err
			case res.ErrorType != id || string(res.Payload) != "env-1:"+string(payload):
				errs <- fmt.Errorf("%s: the answer of another invocation, or a damaged one (%d bytes)", id, len(res.Payload))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	other, err := pki.New([]byte("another cluster's secret, 32 by"))
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Issue("node.n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := DialTLS(context.Background(), "tcp", ln.Addr().String(), key, other.ClientConfig(stranger)); err == nil {
		c.Close()
		t.Fatal("a client of another authority connected")
	}
}
