package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/router"
)

// usageCheckpoint is how often open provisioned segments are recorded.
const usageCheckpoint = 5 * time.Second

// openMeter creates the ledger's stream and the control plane's journal
// (dataDir/meter), publishing first what a killed predecessor left in it.
func (s *Server) openMeter(ctx context.Context, dataDir string) error {
	if s.cfg.NoMeter {
		return nil
	}
	if err := meter.EnsureStream(ctx, s.bus.JetStream()); err != nil {
		return err
	}
	rec, err := meter.NewRecorder(meter.Config{Dir: filepath.Join(dataDir, "meter")}, s.bus.JetStream(), s.logger)
	if err != nil {
		return err
	}
	s.meter = rec
	s.provUsage = &provisionedUsage{rec: rec, open: map[string]*provSegment{}}
	return nil
}

// usageSink records the invocations of the in-process environments:
// on-demand ones, and provisioned ones of Provisioned Concurrency.
type usageSink struct{ rec *meter.Recorder }

func (u usageSink) InvocationDone(spec *agent.Spec, requestID string, start time.Time, r *agent.Result) {
	compute := meter.OnDemand
	if spec.InitType == agent.InitProvisioned {
		compute = meter.Provisioned
	}
	u.rec.Record(meter.InvocationEvent(spec, requestID, start, r, compute))
}

// provisionedUsage records, per Provisioned Concurrency config, segments of
// time with the number of environments it keeps.
//
// Concurrency: mu guards open.
type provisionedUsage struct {
	rec  *meter.Recorder
	mu   sync.Mutex
	open map[string]*provSegment // by "function:qualifier"
}

type provSegment struct {
	ev    meter.Event // Function, Version, Qualifier, Concurrency, MemoryMB, Architecture
	start time.Time
}

// set records that config id keeps n environments of t from now on.
func (p *provisionedUsage) set(id, qualifier string, t *router.Target, n int, now time.Time) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	seg := p.open[id]
	if seg != nil && t != nil && n == seg.ev.Concurrency && t.Version == seg.ev.Version && t.Spec.MemoryMB == seg.ev.MemoryMB {
		return
	}
	if seg != nil {
		p.closeLocked(seg, now)
		delete(p.open, id)
	}
	if t == nil || n <= 0 {
		return
	}
	arch := t.Spec.Architecture
	if arch == "" {
		arch = "x86_64"
	}
	p.open[id] = &provSegment{start: now, ev: meter.Event{
		Kind: meter.KindProvisioned, Function: t.Function, Version: t.Version, Qualifier: qualifier,
		Compute: meter.Provisioned, Concurrency: n, MemoryMB: t.Spec.MemoryMB, Architecture: arch,
	}}
}

func (p *provisionedUsage) closeLocked(seg *provSegment, now time.Time) {
	if !now.After(seg.start) {
		return
	}
	ev := seg.ev
	ev.Start, ev.End = seg.start, now
	ev.ID = "pc-" + ev.Function + ":" + ev.Qualifier + "-" + strconv.FormatInt(seg.start.UnixNano(), 10)
	p.rec.Record(&ev)
	seg.start = now
}

// checkpoint records every open segment up to now; with all it also closes them.
func (p *provisionedUsage) checkpoint(now time.Time, all bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, seg := range p.open {
		if all || now.Sub(seg.start) >= usageCheckpoint {
			p.closeLocked(seg, now)
		}
		if all {
			delete(p.open, id)
		}
	}
}

// busListen is the bus's TCP address: the one of the previous run on the same
// data directory when it is free, so that agents that outlived a control
// plane reconnect to its successor.
func busListen(dataDir string) string {
	file := filepath.Join(dataDir, "nats.addr")
	if b, err := os.ReadFile(file); err == nil {
		addr := strings.TrimSpace(string(b))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	return "127.0.0.1:0"
}

func saveBusListen(dataDir, url string) error {
	addr := strings.TrimPrefix(url, "nats://")
	if addr == "" {
		return errors.New("bus has no TCP listener")
	}
	if err := os.WriteFile(filepath.Join(dataDir, "nats.addr"), []byte(addr+"\n"), 0o644); err != nil {
		return fmt.Errorf("bus address: %w", err)
	}
	return nil
}
