package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/wire"
)

// Pool keeps one multiplexed invoke connection per instance, dialled on
// first use and re-dialled after it breaks. One connection carries every
// invocation to an instance at once, so there is nothing to balance within
// the pool. Safe for concurrent use.
//
// Concurrency: keyOf is immutable; mu guards conns and closed; a dial in
// progress is shared by the callers that wait for it.
type Pool struct {
	keyOf func(instanceID string) []byte
	tls   *tls.Config // for agents served over TCP; nil dials plain

	mu     sync.Mutex
	conns  map[string]*poolConn
	closed bool
}

type poolConn struct {
	network, addr string
	ready         chan struct{} // closed when the dial ends
	conn          *wire.Conn
	err           error
}

// NewPool returns an empty pool. keyOf gives the wire key of an instance's
// agent, which both ends prove they hold before any invocation; nil dials
// without.
func NewPool(keyOf func(instanceID string) []byte) *Pool {
	return &Pool{conns: make(map[string]*poolConn), keyOf: keyOf}
}

// UseTLS makes the pool dial agents served over TCP with cfg (the cluster's
// client configuration): agents on other machines serve the wire over TLS.
// Call it before the first Conn.
func (p *Pool) UseTLS(cfg *tls.Config) { p.tls = cfg }

// ErrPoolClosed is returned once Close was called.
var ErrPoolClosed = errors.New("fleet: pool closed")

// Conn returns the connection to in's agent, dialling it when there is none
// or the one there broke or points at an older address.
func (p *Pool) Conn(ctx context.Context, in Instance) (*wire.Conn, error) {
	if in.InvokeAddr == "" {
		return nil, fmt.Errorf("fleet: instance %s has announced no invoke address", in.ID)
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		pc := p.conns[in.ID]
		if pc == nil || pc.network != in.InvokeNetwork || pc.addr != in.InvokeAddr {
			if pc != nil {
				go closeWhenReady(pc)
			}
			pc = &poolConn{network: in.InvokeNetwork, addr: in.InvokeAddr, ready: make(chan struct{})}
			p.conns[in.ID] = pc
			p.mu.Unlock()
			var key []byte
			if p.keyOf != nil {
				key = p.keyOf(in.ID)
			}
			var tlsCfg *tls.Config
			if pc.network == "tcp" {
				tlsCfg = p.tls
			}
			pc.conn, pc.err = wire.DialTLS(ctx, pc.network, pc.addr, key, tlsCfg)
			close(pc.ready)
			if pc.err != nil {
				p.drop(in.ID, pc)
			}
			return pc.conn, pc.err
		}
		p.mu.Unlock()
		select {
		case <-pc.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if pc.err != nil {
			return nil, pc.err
		}
		select {
		case <-pc.conn.Done():
			p.drop(in.ID, pc) // broken: dial again
			continue
		default:
			return pc.conn, nil
		}
	}
}

// Invoke sends inv to environment envID on instance in. A refusal comes back
// as *wire.RefusedError, a broken connection as *wire.ConnError (the next
// call dials again).
func (p *Pool) Invoke(ctx context.Context, in Instance, envID string, inv env.Invocation) (env.Result, error) {
	c, err := p.Conn(ctx, in)
	if err != nil {
		return env.Result{}, err
	}
	return c.Invoke(ctx, envID, inv)
}

// Forget closes the connection to instance id (lost or terminated).
func (p *Pool) Forget(id string) {
	p.mu.Lock()
	pc := p.conns[id]
	delete(p.conns, id)
	p.mu.Unlock()
	if pc != nil {
		closeWhenReady(pc)
	}
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[string]*poolConn{}
	p.mu.Unlock()
	for _, pc := range conns {
		closeWhenReady(pc)
	}
}

func (p *Pool) drop(id string, pc *poolConn) {
	p.mu.Lock()
	if p.conns[id] == pc {
		delete(p.conns, id)
	}
	p.mu.Unlock()
}

func closeWhenReady(pc *poolConn) {
	<-pc.ready
	if pc.conn != nil {
		_ = pc.conn.Close()
	}
}
