package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/bus"
)

// The history is the life of every terminated instance (launched, started,
// terminated), one entry per instance in a JetStream KV bucket
// (LocalConfig.HistoryBucket), so that it outlives the control plane and
// anyone can hold the usage ledger's instance time against it (`shoal cost
// report`). An entry is written when Terminate has finished, and by the next
// control plane for an instance that died with the one before.

// openHistory opens (or creates) the history bucket.
func openHistory(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (jetstream.KeyValue, error) {
	kv, err := bus.OpenKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "terminated Managed Instances instances: launch, start and terminate times",
		History:     1,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: instance history: %w", err)
	}
	return kv, nil
}

// saveHistory writes a terminated instance's life.
func (l *Local) saveHistory(in Instance) { writeHistory(l.history, l.log, in) }

// writeHistory writes a terminated instance's life to the history bucket.
func writeHistory(history jetstream.KeyValue, log *slog.Logger, in Instance) {
	in.Environments = nil
	in.MeteredUntil = time.Time{}
	body, err := json.Marshal(in)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := history.Put(ctx, in.ID, body); err != nil {
		log.Error("instance history not saved", "instance", in.ID, "launched_at", in.LaunchedAt,
			"terminated_at", in.TerminatedAt, "err", err)
	}
}

// Terminated lists the instances terminated at or after since, as the
// history has them, by terminate time then id.
func (l *Local) Terminated(ctx context.Context, since time.Time) ([]Instance, error) {
	return readHistory(ctx, l.history, l.log, since)
}

// readHistory lists the instances of the history bucket terminated at or
// after since, by terminate time then id.
func readHistory(ctx context.Context, history jetstream.KeyValue, log *slog.Logger, since time.Time) ([]Instance, error) {
	w, err := history.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("fleet: instance history: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []Instance
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("fleet: instance history: the watch ended early")
			}
			if e == nil { // every entry delivered
				slices.SortFunc(out, func(a, b Instance) int {
					if c := a.TerminatedAt.Compare(b.TerminatedAt); c != 0 {
						return c
					}
					return strings.Compare(a.ID, b.ID)
				})
				return out, nil
			}
			var in Instance
			if err := json.Unmarshal(e.Value(), &in); err != nil {
				log.Warn("unreadable instance history entry", "instance", e.Key(), "err", err)
				continue
			}
			if !in.TerminatedAt.Before(since) {
				out = append(out, in)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("fleet: instance history: %w", ctx.Err())
		}
	}
}
