package fleet

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/meter"
)

// UsageRecorder records usage events; *ledger.Recorder implements it.
type UsageRecorder interface {
	Record(ev *meter.Event)
}

// segment is the open stretch of one instance's life in one state.
type segment struct {
	in    Instance // id, capacity provider, type, zone
	state string
	start time.Time
}

// meterLocked closes the instance's open segment at now and opens one in its
// new state (none once terminated). l.mu is held.
func (l *Local) meterLocked(in Instance, now time.Time) {
	if l.usage == nil {
		return
	}
	if seg := l.segs[in.ID]; seg != nil {
		if seg.state == in.State {
			return
		}
		l.closeSegmentLocked(seg, now)
	}
	if in.State == StateTerminated {
		delete(l.segs, in.ID)
		return
	}
	l.segs[in.ID] = &segment{in: in, state: in.State, start: now}
}

func (l *Local) closeSegmentLocked(seg *segment, now time.Time) {
	if !now.After(seg.start) {
		return
	}
	l.usage.Record(&meter.Event{
		ID:   "inst-" + seg.in.ID + "-" + strconv.FormatInt(seg.start.UnixNano(), 10),
		Kind: meter.KindInstance, Start: seg.start, End: now,
		CapacityProvider: seg.in.CapacityProvider, Instance: seg.in.ID, InstanceType: seg.in.Type,
		Zone: seg.in.Zone, State: seg.state,
	})
	seg.start = now
}

// meteredUntilLocked is the start of the instance's open segment: its instance
// time before then is recorded. Zero when it has none.
func (l *Local) meteredUntilLocked(id string) time.Time {
	if seg := l.segs[id]; seg != nil {
		return seg.start
	}
	return time.Time{}
}

// checkpointUsage closes every segment older than the checkpoint interval
// and opens the next in the same state, then saves the instance's record with
// the new start (MeteredUntil). The time since then, if this control plane
// dies, is recorded by the next one: up to the adoption (meterAdoptedLocked)
// or up to the agent's alive stamp (meterGone).
func (l *Local) checkpointUsage(now time.Time) {
	if l.usage == nil {
		return
	}
	var recs []record
	l.mu.Lock()
	for id, seg := range l.segs {
		if now.Sub(seg.start) >= l.cfg.UsageCheckpoint {
			l.closeSegmentLocked(seg, now)
			if li := l.insts[id]; li != nil {
				recs = append(recs, l.recordLocked(li))
			}
		}
	}
	l.mu.Unlock()
	for _, rec := range recs {
		l.save(context.Background(), rec)
	}
}

// meterAdoptedLocked records an adopted instance's time from where the
// control plane before this one left it (rec.MeteredUntil, in the state it
// had then) up to now, and opens its segment in its current state. The
// instance answered, so it ran all along.
func (l *Local) meterAdoptedLocked(rec record, in Instance, now time.Time) {
	if l.usage == nil {
		return
	}
	if rec.State != StateTerminated && !rec.MeteredUntil.IsZero() {
		l.closeSegmentLocked(&segment{in: rec.Instance, state: rec.State, start: rec.MeteredUntil}, now)
	}
	if in.State != StateTerminated {
		l.segs[in.ID] = &segment{in: in, state: in.State, start: now}
	}
}

// goneAt is when an instance of an earlier run whose agent is gone stopped,
// as far as anyone can tell: the agent's last heartbeat (its alive stamp),
// else where its recorded time ends, else its last heartbeat as the record
// has it, else its launch.
func (l *Local) goneAt(rec record) time.Time {
	if alive, ok := agent.LastAlive(filepath.Join(rec.Dir, "work")); ok && !alive.Before(rec.MeteredUntil) {
		if now := l.clock.Now(); alive.After(now) {
			return now
		}
		return alive
	}
	for _, t := range []time.Time{rec.MeteredUntil, rec.LastHeartbeat} {
		if t.After(rec.LaunchedAt) {
			return t
		}
	}
	return rec.LaunchedAt
}

// meterGone records the time of an instance of an earlier run whose agent is
// gone, from where the control plane before this one left it up to end
// (goneAt). A confined agent dies with the control plane that launched it,
// so this is the time that died with it.
func (l *Local) meterGone(rec record, end time.Time) {
	if l.usage == nil || rec.State == StateTerminated || rec.MeteredUntil.IsZero() {
		return
	}
	l.closeSegmentLocked(&segment{in: rec.Instance, state: rec.State, start: rec.MeteredUntil}, end)
}

// closeUsage records the open segments up to now and saves each instance's
// record with that time (Close: the instances may outlive this control
// plane, and its successor records them from there).
func (l *Local) closeUsage() {
	if l.usage == nil {
		return
	}
	var recs []record
	l.mu.Lock()
	now := l.clock.Now()
	for id, seg := range l.segs {
		l.closeSegmentLocked(seg, now)
		delete(l.segs, id)
		if li := l.insts[id]; li != nil && li.info.State != StateTerminated {
			rec := l.recordLocked(li)
			rec.MeteredUntil = now
			recs = append(recs, rec)
		}
	}
	l.mu.Unlock()
	for _, rec := range recs {
		l.save(context.Background(), rec)
	}
}

// drainJournal publishes the usage journal an agent left in its work
// directory (it died, or exited before publishing all of it). A journal that
// cannot be published now is moved aside and published by the next NewLocal.
func (l *Local) drainJournal(dir, id string) {
	src := filepath.Join(dir, "work", "meter")
	if _, err := os.Stat(src); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := ledger.Drain(ctx, l.js, src)
	if err == nil {
		if n > 0 {
			l.log.Info("usage journal of a stopped agent published", "instance", id, "events", n)
		}
		return
	}
	dst := filepath.Join(l.cfg.WorkDir, orphanPrefix+id)
	if rerr := os.Rename(src, dst); rerr != nil {
		l.log.Error("usage journal of a stopped agent lost", "instance", id, "err", err, "move", rerr)
		return
	}
	l.log.Warn("usage journal of a stopped agent kept for later", "instance", id, "err", err)
}

const orphanPrefix = ".meter-"

// cleanStrays cleans up the directories of instances that have no record
// any more: a cluster's leader forgot them while this host was down. Their
// agents died with the host; what they journaled is published now.
func (l *Local) cleanStrays() {
	ents, _ := os.ReadDir(l.cfg.WorkDir)
	for _, e := range ents {
		id := e.Name()
		if !e.IsDir() || !strings.HasPrefix(id, "i-") {
			continue
		}
		l.mu.Lock()
		_, known := l.insts[id]
		l.mu.Unlock()
		if known {
			continue
		}
		dir := filepath.Join(l.cfg.WorkDir, id)
		l.log.Info("cleaning up an instance this host no longer has", "instance", id)
		li := &localInst{info: Instance{ID: id}, dir: dir, socket: socketPath(dir, id)}
		l.cleanup(li)
	}
}

// drainOrphans publishes journals earlier runs moved aside.
func (l *Local) drainOrphans() {
	ents, _ := os.ReadDir(l.cfg.WorkDir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), orphanPrefix) {
			continue
		}
		dir := filepath.Join(l.cfg.WorkDir, e.Name())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := ledger.Drain(ctx, l.js, dir)
		cancel()
		if err == nil {
			_ = os.RemoveAll(dir)
		}
	}
}
