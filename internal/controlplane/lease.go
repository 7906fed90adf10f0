package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/clock"
)

// The cluster's leader holds a lease: a key in a JetStream KV bucket whose
// entries expire after leaseTTL. The leader renews it every leaseTTL/4 by a
// compare-and-set on its revision; the other nodes try to create it as
// often, which succeeds only once it has expired. So when the leader dies,
// another node leads within leaseTTL plus one try; when a leader cannot renew
// (it lost the bus), it steps down before its lease could be taken.
const (
	leaseBucket = "shoal_leader"
	leaseKey    = "leader"
	leaseTTL    = 3 * time.Second
)

// lease is this node's part in the election.
//
// Concurrency: kv, node, log and clock are immutable; mu guards leading
// and holder; onChange is called from the run goroutine only.
type lease struct {
	kv       jetstream.KeyValue
	js       jetstream.JetStream
	server   string // this node's NATS server name
	node     string
	log      *slog.Logger
	clock    clock.Clock
	onChange func(leading bool)

	mu      sync.Mutex
	leading bool
	holder  string
}

func openLease(ctx context.Context, js jetstream.JetStream, server, node string, replicas int, logger *slog.Logger,
	clk clock.Clock, onChange func(bool)) (*lease, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: leaseBucket, History: 1, TTL: leaseTTL,
		Replicas: max(1, replicas), Description: "the cluster's leader"})
	if err != nil {
		return nil, fmt.Errorf("leader lease: %w", err)
	}
	return &lease{kv: kv, js: js, server: server, node: node, log: logger.With("component", "lease"), clock: clk, onChange: onChange}, nil
}

// run takes part in the election until ctx ends, then gives the lease up.
func (l *lease) run(ctx context.Context) {
	t := l.clock.NewTicker(leaseTTL / 4)
	defer t.Stop()
	var rev uint64
	for {
		rev = l.try(ctx, rev)
		select {
		case <-ctx.Done():
			if l.isLeading() {
				// Let another node take over at once.
				dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = l.kv.Delete(dctx, leaseKey, jetstream.LastRevision(rev))
				cancel()
				l.set(false, "")
			}
			return
		case <-t.C():
		}
	}
}

// try renews the lease this node holds, or tries to take it.
func (l *lease) try(ctx context.Context, rev uint64) uint64 {
	actx, cancel := context.WithTimeout(ctx, leaseTTL/4)
	defer cancel()
	if l.isLeading() {
		n, err := l.kv.Update(actx, leaseKey, []byte(l.node), rev)
		if err == nil {
			l.keepLeaseApart(actx)
			return n
		}
		l.log.Warn("lost the lead", "err", err)
		l.set(false, "")
		return 0
	}
	n, err := l.kv.Create(actx, leaseKey, []byte(l.node))
	if err == nil {
		l.log.Info("leading the cluster", "node", l.node)
		l.set(true, l.node)
		l.keepLeaseApart(actx)
		return n
	}
	if e, gerr := l.kv.Get(actx, leaseKey); gerr == nil {
		l.set(false, string(e.Value()))
	} else if errors.Is(gerr, jetstream.ErrKeyNotFound) {
		l.set(false, "")
	}
	return 0
}

// keepLeaseApart keeps the lease's own stream led by another node than the
// one that holds the lease. When the leader's machine dies, the lease then
// expires and is taken on a stream that still has its leader: electing a new
// stream leader takes JetStream several seconds (its Raft election timeout),
// and would come on top of the lease's time.
func (l *lease) keepLeaseApart(ctx context.Context) {
	if l.js == nil || l.server == "" {
		return
	}
	st, err := l.js.Stream(ctx, "KV_"+leaseBucket)
	if err != nil {
		return
	}
	info := st.CachedInfo()
	if info == nil || info.Cluster == nil || info.Cluster.Leader != l.server || len(info.Cluster.Replicas) == 0 {
		return
	}
	if _, err := l.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN.KV_"+leaseBucket, nil); err != nil {
		l.log.Debug("the lease's stream did not step down", "err", err)
	}
}

func (l *lease) set(leading bool, holder string) {
	l.mu.Lock()
	changed := l.leading != leading
	l.leading, l.holder = leading, holder
	l.mu.Unlock()
	if changed && l.onChange != nil {
		l.onChange(leading)
	}
}

func (l *lease) isLeading() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading
}

// Leader names the node that leads, as last seen ("" when none does).
func (l *lease) leader() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder
}
