// Package ledger is shoal's usage ledger: every invocation, every
// instance-second of the Managed Instances fleet and every provisioned
// GB-second becomes a durable usage event (internal/meter) in the JetStream stream SHOAL_USAGE.
//
// Whoever observes usage records it through a Recorder, which appends the
// event to a journal file on local disk before anything else (a line written
// with one write(2) survives the process being killed) and then publishes the
// journal to JetStream in batches, with the event id as the message id so that
// JetStream drops duplicates. A journal left behind by a process that died —
// the control plane's own, or an agent's that the control plane finds dead —
// is published again by Drain; a Recorder whose connection is down keeps its
// journal and publishes it once the connection is back. Readers see each event
// once: JetStream deduplicates within its window and Read deduplicates by id.
package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/meter"
)

// The ledger's stream.
const (
	StreamName    = "SHOAL_USAGE"
	SubjectPrefix = "shoal.usage."
	// DuplicateWindow is how long JetStream remembers message ids. Only a
	// range re-sent by a publisher that found its predecessor's range
	// unfinished repeats one, at its next start: well inside the window
	// unless the process stays down longer (Read still drops such repeats).
	DuplicateWindow = 10 * time.Minute
	// MaxLag is how long after its End an event may reach the ledger and
	// still be found by a Read of its period (a journal published late, after
	// an outage).
	MaxLag = 24 * time.Hour
)

// EnsureStream creates the ledger's stream if it does not exist.
func EnsureStream(ctx context.Context, js jetstream.JetStream) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       StreamName,
		Subjects:   []string{SubjectPrefix + ">"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Duplicates: DuplicateWindow,
	})
	if err != nil {
		return fmt.Errorf("ledger: create stream: %w", err)
	}
	return nil
}

// Query selects events by when they ended, [Since, Until), and by function.
// A function filter keeps that function's invocations and provisioned
// segments and every instance segment (instances belong to capacity
// providers, which a reader attributes).
type Query struct {
	Since, Until time.Time
	Function     string
}

func (q Query) match(ev *meter.Event) bool {
	if !q.Since.IsZero() && ev.End.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !ev.End.Before(q.Until) {
		return false
	}
	return q.Function == "" || ev.Kind == meter.KindInstance || ev.Function == q.Function
}

// Read returns the events of q in the ledger, each once, ordered by End.
func Read(ctx context.Context, js jetstream.JetStream, q Query) ([]meter.Event, error) {
	var out []meter.Event
	seen := map[string]bool{}
	err := Scan(ctx, js, q, func(ev *meter.Event) error {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, *ev)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b meter.Event) int { return a.End.Compare(b.End) })
	return out, err
}

// scanInactive is how long the server keeps the consumer of a scan whose
// reader stopped without deleting it.
const scanInactive = 30 * time.Second

// Scan calls yield for every stored event of q in the order stored; an event
// re-sent after a crash outside JetStream's duplicate window appears again
// (Read removes such repeats).
func Scan(ctx context.Context, js jetstream.JetStream, q Query, yield func(*meter.Event) error) error {
	stream, err := js.Stream(ctx, StreamName)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if q.Function != "" {
		fn := token(q.Function)
		cfg.FilterSubjects = []string{
			// Events recorded before subjects named their source end at the
			// function.
			SubjectPrefix + string(meter.KindInvocation) + "." + fn,
			SubjectPrefix + string(meter.KindInvocation) + "." + fn + ".>",
			SubjectPrefix + string(meter.KindProvisioned) + "." + fn,
			SubjectPrefix + string(meter.KindProvisioned) + "." + fn + ".>",
			SubjectPrefix + string(meter.KindInstance) + ".>",
		}
	}
	if !q.Since.IsZero() {
		start := q.Since.Add(-MaxLag)
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	}
	// A scan's consumer is deleted when it ends, and the server drops one
	// left behind (a reader that died) after InactiveThreshold: readers that
	// poll the ledger must not pile consumers up to the server's limit.
	cfg.InactiveThreshold = scanInactive
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = stream.DeleteConsumer(dctx, info.Name)
		}
	}()
	for {
		msgs, err := cons.Fetch(1024, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		got := 0
		for m := range msgs.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("ledger: %w", err)
			}
			for line := range bytes.SplitSeq(m.Data(), []byte{'\n'}) {
				var ev meter.Event
				if len(line) > 0 && json.Unmarshal(line, &ev) == nil && q.match(&ev) {
					if err := yield(&ev); err != nil {
						return err
					}
				}
			}
			if md.Sequence.Stream >= last {
				return nil
			}
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("ledger: %w", err)
		}
		if got == 0 {
			// Nothing more matches the filter before the last sequence.
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// Handler serves GET /shoal/v1/usage?since=RFC3339&until=RFC3339&function=F
// as newline-delimited JSON events (Read's result); with raw=true, every
// stored message in stream order, without removing repeats.
func Handler(js jetstream.JetStream) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var q Query
		for name, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
			if v := r.URL.Query().Get(name); v != "" {
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					http.Error(w, name+": not an RFC 3339 time", http.StatusBadRequest)
					return
				}
				*dst = t
			}
		}
		q.Function = r.URL.Query().Get("function")
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		if r.URL.Query().Get("raw") == "true" {
			// Every stored message, repeats included, in stream order.
			_ = Scan(r.Context(), js, q, func(ev *meter.Event) error { return enc.Encode(ev) })
			return
		}
		events, err := Read(r.Context(), js, q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for i := range events {
			if err := enc.Encode(&events[i]); err != nil {
				return
			}
		}
	})
}
