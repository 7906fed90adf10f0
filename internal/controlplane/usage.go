package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/ledger"
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
	retention := s.cfg.UsageRetention
	switch {
	case retention == 0:
		retention = ledger.DefaultRetention
	case retention < 0:
		retention = 0 // for ever
	}
	if err := ledger.EnsureStream(ctx, s.bus.JetStream(), retention, s.replicas); err != nil {
		return err
	}
	rec, err := ledger.NewRecorder(ledger.Config{Dir: filepath.Join(dataDir, "meter")}, s.bus.JetStream(), s.logger)
	if err != nil {
		return err
	}
	s.meter = rec
	s.provUsage = openProvisionedUsage(rec, dataDir, s.logger)
	return nil
}

// usageSink records the invocations of the in-process environments:
// on-demand ones, and provisioned ones of Provisioned Concurrency.
type usageSink struct{ rec *ledger.Recorder }

func (u usageSink) InvocationDone(spec *env.Spec, requestID string, start time.Time, r *env.Result) {
	compute := meter.OnDemand
	if spec.InitType == env.InitProvisioned {
		compute = meter.Provisioned
	}
	u.rec.Record(env.UsageEvent(spec, requestID, start, r, compute))
}

// provisionedUsage records, per Provisioned Concurrency config, segments of
// time with the number of environments it keeps.
//
// The open segments are also kept in a file (provOpenFile), rewritten whenever
// one opens, closes or is checkpointed, and the control plane stamps the time
// every second (provStampFile): the provisioned environments live in this
// process, so after a kill the next start records each open segment up to
// the last stamp (recordKilledRun), under the id its checkpoint would have
// had.
//
// Concurrency: mu guards open and the file.
type provisionedUsage struct {
	rec  *ledger.Recorder
	path string // provOpenFile in the data directory; "" keeps nothing
	log  *slog.Logger
	mu   sync.Mutex
	open map[string]*provSegment // by "function:qualifier" (and "@version" for a weighted alias's part)
}

const (
	provOpenFile  = "provisioned-open.json"
	provStampFile = "alive"
)

type provSegment struct {
	ev    meter.Event // Function, Version, Qualifier, Concurrency, MemoryMB, Architecture
	start time.Time
	// key names the segment's config, or its part of a weighted alias's config
	// ("function:qualifier@version"); "" is "function:qualifier".
	key string
}

// provSaved is an open segment as kept in the file.
type provSaved struct {
	Event meter.Event `json:"event"`
	Start time.Time   `json:"start"`
	Key   string      `json:"key,omitempty"`
}

// openProvisionedUsage records what a killed predecessor's open segments
// used up to its last stamp, then starts keeping this run's.
func openProvisionedUsage(rec *ledger.Recorder, dataDir string, log *slog.Logger) *provisionedUsage {
	p := &provisionedUsage{rec: rec, path: filepath.Join(dataDir, provOpenFile), log: log, open: map[string]*provSegment{}}
	p.recordKilledRun(filepath.Join(dataDir, provStampFile))
	return p
}

func (p *provisionedUsage) recordKilledRun(stampPath string) {
	b, err := os.ReadFile(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var saved []provSaved
	if err == nil {
		err = json.Unmarshal(b, &saved)
	}
	if err != nil {
		p.log.Error("provisioned time of the previous run not recorded", "err", err)
		return
	}
	until, ok := ledger.ReadStamp(stampPath)
	if !ok && len(saved) > 0 {
		p.log.Error("provisioned time of the previous run not recorded: no stamp of its last second")
		return
	}
	for _, sv := range saved {
		p.closeLocked(&provSegment{ev: sv.Event, start: sv.Start, key: sv.Key}, until, true)
	}
	if len(saved) > 0 {
		p.log.Info("provisioned time of the previous run recorded up to its last stamp", "configs", len(saved), "until", until)
	}
	p.saveLocked()
}

// saveLocked rewrites the file of open segments (write, then rename over).
func (p *provisionedUsage) saveLocked() {
	if p.path == "" {
		return
	}
	saved := make([]provSaved, 0, len(p.open))
	for _, seg := range p.open {
		saved = append(saved, provSaved{Event: seg.ev, Start: seg.start, Key: seg.key})
	}
	b, _ := json.Marshal(saved)
	tmp := p.path + ".tmp"
	err := os.WriteFile(tmp, b, 0o644)
	if err == nil {
		err = os.Rename(tmp, p.path)
	}
	if err != nil {
		p.log.Warn("open provisioned segments not saved: a kill now leaves their time since the last checkpoint unrecorded", "err", err)
	}
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
	defer p.saveLocked()
	if seg != nil {
		p.closeLocked(seg, now, true)
		delete(p.open, id)
	}
	if t == nil || n <= 0 {
		return
	}
	arch := t.Spec.Architecture
	if arch == "" {
		arch = "x86_64"
	}
	p.open[id] = &provSegment{start: now, key: id, ev: meter.Event{
		Kind: meter.KindProvisioned, Function: t.Function, Version: t.Version, Qualifier: qualifier,
		Compute: meter.Provisioned, Concurrency: n, MemoryMB: t.Spec.MemoryMB, Architecture: arch,
	}}
}

// closeLocked records seg up to now; final says the span ends there.
func (p *provisionedUsage) closeLocked(seg *provSegment, now time.Time, final bool) {
	if !now.After(seg.start) {
		return
	}
	ev := seg.ev
	ev.Start, ev.End, ev.Final = seg.start, now, final
	key := seg.key
	if key == "" {
		key = ev.Function + ":" + ev.Qualifier
	}
	ev.ID = "pc-" + key + "-" + strconv.FormatInt(seg.start.UnixNano(), 10)
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
	closed := false
	for id, seg := range p.open {
		if all || now.Sub(seg.start) >= usageCheckpoint {
			p.closeLocked(seg, now, all)
			closed = true
		}
		if all {
			delete(p.open, id)
		}
	}
	if closed || all {
		p.saveLocked()
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

// openStamp opens the control plane's stamp beside the file of open
// segments; nil without a meter (Stamp methods accept nil).
func (p *provisionedUsage) openStamp() *ledger.Stamp {
	if p == nil || p.path == "" {
		return nil
	}
	st, err := ledger.OpenStamp(filepath.Join(filepath.Dir(p.path), provStampFile))
	if err != nil {
		p.log.Warn("no stamp: a kill leaves provisioned time since the last checkpoint unrecorded", "err", err)
		return nil
	}
	return st
}
