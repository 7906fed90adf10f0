package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/guard"
)

// record is an instance as kept in the KV bucket. Its MeteredUntil is where
// the instance's recorded instance time ends: the next control plane records
// the time from there, which its predecessor could not.
type record struct {
	Instance
	Pid     int      `json:"pid,omitempty"`
	Dir     string   `json:"dir"`
	Socket  string   `json:"socket"`
	Cgroups []string `json:"cgroups,omitempty"`

	rev uint64 // the bucket's revision it was read at (Cluster); not stored
}

func (l *Local) recordLocked(li *localInst) record {
	in := li.info.clone()
	in.Environments = nil // they change with every heartbeat; agents report them
	return record{Instance: in, Pid: li.pid, Dir: li.dir, Socket: li.socket, Cgroups: li.cgroups}
}

// save writes an instance's record. Saves run one at a time, and each takes
// MeteredUntil as it is then, so a save that was overtaken never writes an
// older MeteredUntil over a newer one.
func (l *Local) save(ctx context.Context, rec record) {
	if ctx.Err() != nil {
		ctx = context.Background()
	}
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	_, live := l.insts[rec.ID]
	m := l.meteredUntilLocked(rec.ID)
	l.mu.Unlock()
	if !live {
		// Terminated since rec was taken: its record is deleted (or about to
		// be, under saveMu) and must not come back, or the next control
		// plane would find it and write a second, wrong end to its life.
		return
	}
	if m.After(rec.MeteredUntil) {
		rec.MeteredUntil = m
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return
	}
	if _, err := l.kv.Put(ctx, rec.ID, body); err != nil {
		l.log.Warn("instance record not saved", "instance", rec.ID, "err", err)
	}
}

// recover reads the records of an earlier run: an instance whose agent still
// answers is adopted; the others are cleaned up and forgotten.
func (l *Local) recover(ctx context.Context) error {
	keys, err := l.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fleet: list instance records: %w", err)
	}
	var ids []string
	for k := range keys.Keys() {
		ids = append(ids, k)
	}
	for _, id := range ids {
		e, err := l.kv.Get(ctx, id)
		if err != nil {
			continue
		}
		var rec record
		if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.ID != id {
			l.log.Warn("unreadable instance record dropped", "instance", id)
			_ = l.kv.Delete(ctx, id)
			continue
		}
		if rec.Host != l.cfg.Host {
			continue // another machine's
		}
		li := &localInst{info: rec.Instance, dir: rec.Dir, socket: rec.Socket, pid: rec.Pid,
			cgroups: rec.Cgroups, cancel: make(chan struct{})}
		close(li.cancel)
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		hb, err := l.agents.Status(sctx, id)
		cancel()
		if err == nil && hb.State != agent.StateTerminated {
			now := l.clock.Now()
			l.applyHeartbeatLocked(li, hb)
			li.info.LastHeartbeat = now
			if li.info.StartedAt.IsZero() && li.info.State != StatePending {
				li.info.StartedAt = now // it left pending while no control plane watched; metered from here
			}
			l.insts[id] = li
			l.meterAdoptedLocked(rec, li.info, now)
			l.save(ctx, l.recordLocked(li))
			l.log.Info("instance adopted", "instance", id, "state", li.info.State)
			continue
		}
		l.log.Info("instance of an earlier run is gone; cleaning up", "instance", id)
		end := l.goneAt(rec)
		l.meterGone(rec, end)
		gone := rec.Instance
		gone.State, gone.StateReason, gone.TerminatedAt, gone.MeteredUntil = StateTerminated, "gone with an earlier control plane", end, time.Time{}
		l.saveHistory(gone)
		l.cleanup(li)
		l.deleteRecord(ctx, id)
	}
	return nil
}

// deleteRetryInterval is how often the monitor tries again to delete the
// records whose delete failed.
const deleteRetryInterval = 5 * time.Second

// deleteRecord deletes the record of an instance that is gone. When the
// delete fails, the monitor tries again (retryDeletes) until it succeeds.
func (l *Local) deleteRecord(ctx context.Context, id string) {
	l.saveMu.Lock()
	err := l.kv.Delete(ctx, id)
	l.saveMu.Unlock()
	if err == nil || errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
	l.log.Warn("instance record not deleted; trying again", "instance", id, "err", err)
	l.mu.Lock()
	l.undeleted[id] = true
	l.mu.Unlock()
}

// retryDeletes tries again to delete the records of gone instances whose
// delete failed, at most once every deleteRetryInterval.
func (l *Local) retryDeletes(now time.Time) {
	l.mu.Lock()
	if len(l.undeleted) == 0 || now.Before(l.nextDeleteTry) {
		l.mu.Unlock()
		return
	}
	l.nextDeleteTry = now.Add(deleteRetryInterval)
	var ids []string
	for id := range l.undeleted {
		if l.insts[id] == nil {
			ids = append(ids, id)
		}
	}
	l.mu.Unlock()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		l.saveMu.Lock()
		err := l.kv.Delete(ctx, id)
		l.saveMu.Unlock()
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		l.mu.Lock()
		delete(l.undeleted, id)
		l.mu.Unlock()
		l.log.Info("instance record deleted", "instance", id)
	}
}

// onHeartbeat updates an instance from its agent's heartbeat.
func (l *Local) onHeartbeat(m *nats.Msg) {
	hb, ok := agent.ReadHeartbeat(m.Subject, m.Data)
	if !ok {
		return
	}
	l.mu.Lock()
	li := l.insts[hb.ID]
	if li == nil || li.info.State == StateLost || li.info.State == StateTerminated {
		l.mu.Unlock()
		return
	}
	if li.cmd != nil && hb.Pid != li.pid && hb.Pid != 0 {
		l.mu.Unlock()
		return // another process claiming the id
	}
	if hb.Pid == li.hbPid && hb.Seq <= li.hbSeq {
		l.mu.Unlock()
		return // out of order
	}
	if hb.State == agent.StateTerminated {
		adoptedExit := li.exited == nil && !li.terminating
		l.mu.Unlock()
		if adoptedExit {
			l.markLost(hb.ID, "the agent exited")
		}
		return
	}
	prev := li.info.State
	before := li.info.Environments
	l.applyHeartbeatLocked(li, hb)
	li.info.LastHeartbeat = l.clock.Now()
	var rec *record
	switch {
	case prev != li.info.State:
		l.emitLocked(li, prev)
		r := l.recordLocked(li)
		rec = &r
	case envsChanged(before, li.info.Environments):
		l.emitLocked(li, prev)
	}
	l.mu.Unlock()
	if rec != nil {
		l.log.Info("instance state", "instance", hb.ID, "state", rec.State, "previous", prev)
		l.save(context.Background(), *rec)
	}
}

// applyHeartbeatLocked copies a heartbeat into li; l.mu is held (or li is not shared yet).
func (l *Local) applyHeartbeatLocked(li *localInst, hb agent.Heartbeat) {
	li.hbPid, li.hbSeq = hb.Pid, hb.Seq
	if li.pid == 0 {
		li.pid = hb.Pid
	}
	in := &li.info
	in.InvokeNetwork, in.InvokeAddr = hb.InvokeNetwork, hb.InvokeAddr
	in.CPUUtilization = hb.CPUUtilization
	in.MetricsAddr = hb.MetricsAddr
	in.NetworkRxBytes, in.NetworkTxBytes, in.OpenFDs = hb.NetworkRxBytes, hb.NetworkTxBytes, hb.OpenFDs
	if hb.MemoryMB > 0 {
		in.MemoryUtilization = float64(hb.MemoryUsedMB) / float64(hb.MemoryMB)
	}
	in.Environments = append([]EnvStatus(nil), hb.Environments...)
	applyBuilds(in, hb)
	switch {
	case hb.State == agent.StateDraining && in.State != StateDraining:
		in.State, in.StateReason = StateDraining, "the agent is draining"
	case hb.State == agent.StateRunning && in.State == StatePending:
		in.State, in.StateReason = StateRunning, ""
	}
}

// envsChanged reports whether the set of environments or any of their
// states differ (in-flight counts alone do not count).
func envsChanged(a, b []EnvStatus) bool {
	if len(a) != len(b) {
		return true
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].State != b[i].State {
			return true
		}
	}
	return false
}

// monitor marks instances lost when their heartbeats stop or their boot
// takes too long.
func (l *Local) monitor() {
	defer close(l.loopEnd)
	t := l.clock.NewTicker(max(l.cfg.Heartbeat/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C():
		}
		_ = guard.Run(l.log, "fleet monitor", l.checkInstances)
	}
}

// checkInstances records the instances' usage up to now and marks lost the
// ones whose heartbeats stopped or whose boot takes too long.
func (l *Local) checkInstances() {
	now := l.clock.Now()
	l.checkpointUsage(now)
	l.retryDeletes(now)
	type loss struct{ id, why string }
	var lost []loss
	l.mu.Lock()
	for id, li := range l.insts {
		if li.terminating {
			continue
		}
		switch li.info.State {
		case StatePending:
			if li.pid != 0 && now.Sub(li.info.LaunchedAt) > l.cfg.LaunchDelay+l.cfg.BootTimeout {
				lost = append(lost, loss{id, "no heartbeat within the boot timeout"})
			}
		case StateRunning, StateDraining:
			if now.Sub(li.info.LastHeartbeat) > l.cfg.HeartbeatTimeout {
				lost = append(lost, loss{id, "no heartbeat for " + now.Sub(li.info.LastHeartbeat).Round(time.Millisecond).String()})
			}
		}
	}
	l.mu.Unlock()
	for _, x := range lost {
		l.markLost(x.id, x.why)
	}
}

// applyBuilds copies a heartbeat's drain counts and runtime builds into in.
func applyBuilds(in *Instance, hb agent.Heartbeat) {
	in.DrainedInvocations = max(in.DrainedInvocations, hb.DrainedInvocations)
	in.CutInvocations = max(in.CutInvocations, hb.CutInvocations)
	if hb.Runtimes != nil {
		in.Runtimes = hb.Runtimes
	}
	if hb.Bootstrap != "" {
		in.Bootstrap = hb.Bootstrap
	}
}
