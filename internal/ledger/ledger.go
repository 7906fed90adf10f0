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
	"io"
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

	// syncWait bounds how long a read of the ledger waits for the events
	// recorded before it to be published.
	syncWait = 5 * time.Second
)

// DefaultRetention is how long the ledger keeps a message by default:
// 13 months and a little, as long as AWS Cost Explorer keeps a bill's
// history, so that a report can set this month against the same month last
// year.
const DefaultRetention = 400 * 24 * time.Hour

// EnsureStream creates the ledger's stream if it does not exist, with
// replicas copies (1 on one machine, 3 in a cluster), and sets how long it
// keeps messages (0: for ever). A shorter retention removes the older
// messages at once.
func EnsureStream(ctx context.Context, js jetstream.JetStream, retention time.Duration, replicas int) error {
	if retention < 0 {
		return fmt.Errorf("ledger: retention %v: must not be negative", retention)
	}
	dups := DuplicateWindow
	if retention > 0 {
		dups = min(dups, retention) // JetStream's rule; a retention that short is for tests
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       StreamName,
		Subjects:   []string{SubjectPrefix + ">"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     retention,
		Duplicates: dups,
		Replicas:   max(1, replicas),
	})
	if err != nil {
		return fmt.Errorf("ledger: create stream: %w", err)
	}
	return nil
}

// Gap is a part of the ledger a read could not deliver, so that a reader
// does not take the events it got for all there were: messages removed
// (retention, a purge, a deletion), messages the store lost (damaged
// files), or stored lines that are not usage events.
type Gap struct {
	// Problem says what is missing and why.
	Problem string `json:"problem"`
	// FirstSeq and LastSeq are the stream messages concerned.
	FirstSeq uint64 `json:"first_seq,omitempty"`
	LastSeq  uint64 `json:"last_seq,omitempty"`
	// Before, for messages removed from the start of the ledger: events that
	// ended before it may be missing.
	Before time.Time `json:"before,omitzero"`
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

// Read returns the events of q in the ledger, each once, ordered by End,
// and the gaps of the ledger that may hold more of them.
func Read(ctx context.Context, js jetstream.JetStream, q Query) ([]meter.Event, []Gap, error) {
	var out []meter.Event
	seen := map[string]bool{}
	gaps, err := Scan(ctx, js, q, func(ev *meter.Event) error {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, *ev)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b meter.Event) int { return a.End.Compare(b.End) })
	return out, gaps, err
}

// scanInactive is how long the server keeps the consumer of a scan whose
// reader stopped without deleting it.
const scanInactive = 30 * time.Second

// Scan calls yield for every stored event of q in the order stored; an event
// re-sent after a crash outside JetStream's duplicate window appears again
// (Read removes such repeats). It returns the gaps that may hold more of q's
// events: what was removed from or lost by the stream in q's period, and
// stored lines that are not events.
func Scan(ctx context.Context, js jetstream.JetStream, q Query, yield func(*meter.Event) error) ([]Gap, error) {
	stream, err := js.Stream(ctx, StreamName)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	info, err := stream.Info(ctx, jetstream.WithDeletedDetails(true))
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	var start time.Time // stored from then on: the messages that may hold q's events
	if !q.Since.IsZero() {
		start = q.Since.Add(-MaxLag)
	}
	gaps := storeGaps(ctx, stream, &info.State, q.Since, start)
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return gaps, nil
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
	if !start.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	}
	// A scan's consumer is deleted when it ends, and the server drops one
	// left behind (a reader that died) after InactiveThreshold: readers that
	// poll the ledger must not pile consumers up to the server's limit.
	cfg.InactiveThreshold = scanInactive
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return gaps, fmt.Errorf("ledger: %w", err)
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = stream.DeleteConsumer(dctx, info.Name)
		}
	}()
	// The scan reads through one iterator: each Fetch of an ordered
	// consumer would replace its server consumer with a new one and delete
	// the old in the background, after the scan has returned. It ends when
	// the consumer has nothing more of q pending, as the server counts,
	// never on a quiet spell, which a loaded machine can make of anything.
	if info := cons.CachedInfo(); info == nil || info.NumPending == 0 {
		return gaps, nil
	}
	it, err := cons.Messages()
	if err != nil {
		return gaps, fmt.Errorf("ledger: %w", err)
	}
	defer it.Stop()
	var seen uint64 // the stream sequence of the last message read
	for {
		m, err := nextMsg(ctx, cons, it, seen)
		if err != nil {
			return gaps, fmt.Errorf("ledger: %w", err)
		}
		if m == nil {
			return gaps, nil
		}
		md, err := m.Metadata()
		if err != nil {
			return gaps, fmt.Errorf("ledger: %w", err)
		}
		seen = md.Sequence.Stream
		bad, firstErr := 0, error(nil)
		for line := range bytes.SplitSeq(m.Data(), []byte{'\n'}) {
			if len(line) == 0 {
				continue
			}
			var ev meter.Event
			if err := json.Unmarshal(line, &ev); err != nil || ev.ID == "" || ev.Kind == "" {
				if bad++; firstErr == nil {
					firstErr = err
					if err == nil {
						firstErr = errors.New("no id or kind")
					}
				}
				continue
			}
			if q.match(&ev) {
				if err := yield(&ev); err != nil {
					return gaps, err
				}
			}
		}
		if bad > 0 {
			gaps = append(gaps, Gap{FirstSeq: seen, LastSeq: seen,
				Problem: fmt.Sprintf("message %d of %s holds %d lines that are not usage events (%v)", seen, m.Subject(), bad, firstErr)})
		}
		if seen >= last || md.NumPending == 0 {
			// The last message stored when the scan began, or the last
			// one of q.
			return gaps, nil
		}
	}
}

// scanRecheck is how long a scan waits for its next message before it asks
// the server whether one is still to come (messages deleted meanwhile never
// are).
const scanRecheck = time.Second

// nextMsg returns the scan's next message, or nil when the server has none
// of the consumer's pending and has delivered none after seen (the stream
// sequence of the last message read).
func nextMsg(ctx context.Context, cons jetstream.Consumer, it jetstream.MessagesContext, seen uint64) (jetstream.Msg, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, scanRecheck)
		m, err := it.Next(jetstream.NextContext(wctx))
		cancel()
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return nil, err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return nil, err
		}
		if info.NumPending == 0 && (info.Delivered.Consumer == 0 || info.Delivered.Stream <= seen) {
			return nil, nil
		}
	}
}

// storeGaps lists what the stream no longer holds of the messages stored
// from start on (all of them when start is zero): messages removed from its
// beginning while q's period (from since) reaches back before its first one,
// and messages deleted or lost in between.
func storeGaps(ctx context.Context, stream jetstream.Stream, st *jetstream.StreamState, since, start time.Time) []Gap {
	var gaps []Gap
	if st.FirstSeq > 1 && st.LastSeq > 0 {
		switch {
		case st.Msgs == 0:
			gaps = append(gaps, Gap{FirstSeq: 1, LastSeq: st.LastSeq,
				Problem: fmt.Sprintf("all %d messages the ledger stored were removed (usage retention or a purge)", st.LastSeq)})
		case since.IsZero() || since.Before(st.FirstTime):
			gaps = append(gaps, Gap{FirstSeq: 1, LastSeq: st.FirstSeq - 1, Before: st.FirstTime,
				Problem: fmt.Sprintf("messages 1-%d were removed from the ledger (usage retention or a purge): events that ended before %s may be missing",
					st.FirstSeq-1, st.FirstTime.UTC().Format(time.RFC3339))})
		}
	}
	report := func(seqs []uint64, why string) {
		slices.Sort(seqs)
		for i := 0; i < len(seqs); {
			j := i
			for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
				j++
			}
			first, last := seqs[i], seqs[j]
			i = j + 1
			if !start.IsZero() && last < st.LastSeq {
				// The range is in the period when what was stored after it was.
				if m, err := stream.GetMsg(ctx, last+1); err == nil && m.Time.Before(start) {
					continue
				}
			}
			gaps = append(gaps, Gap{FirstSeq: first, LastSeq: last, Problem: fmt.Sprintf("messages %d-%d %s", first, last, why)})
		}
	}
	report(slices.Clone(st.Deleted), "were deleted from the ledger")
	if st.Lost != nil {
		report(slices.Clone(st.Lost.Msgs), "were lost by the ledger's store (damaged files)")
	}
	return gaps
}

// Handler serves GET /shoal/v1/usage?since=RFC3339&until=RFC3339&function=F
// as newline-delimited JSON events (Read's result); with raw=true, every
// stored message in stream order, without removing repeats. When rec is not
// nil, a read first waits (a few seconds at most) for rec to publish what it
// has recorded, so a reader finds every event this process recorded before
// the request: the fleet's instance time up to the MeteredUntil it shows.
func Handler(js jetstream.JetStream, rec *Recorder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec != nil {
			ctx, cancel := context.WithTimeout(r.Context(), syncWait)
			_ = rec.Sync(ctx) // a ledger that is down answers with what it has
			cancel()
		}
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
			gaps, _ := Scan(r.Context(), js, q, func(ev *meter.Event) error { return enc.Encode(ev) })
			writeGaps(enc, gaps)
			return
		}
		events, gaps, err := Read(r.Context(), js, q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for i := range events {
			if err := enc.Encode(&events[i]); err != nil {
				return
			}
		}
		writeGaps(enc, gaps)
	})
}

// writeGaps ends a usage answer with a line per gap: {"problem":…}, a key
// no event has (DecodeUsage tells them apart).
func writeGaps(enc *json.Encoder, gaps []Gap) {
	for i := range gaps {
		if err := enc.Encode(&gaps[i]); err != nil {
			return
		}
	}
}

// DecodeUsage reads an answer of GET /shoal/v1/usage: its events and its
// gaps.
func DecodeUsage(r io.Reader) ([]meter.Event, []Gap, error) {
	var events []meter.Event
	var gaps []Gap
	dec := json.NewDecoder(r)
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return events, gaps, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("usage: line %d: %w", len(events)+len(gaps)+1, err)
		}
		var probe struct {
			Problem *string `json:"problem"`
		}
		if json.Unmarshal(raw, &probe) == nil && probe.Problem != nil {
			var g Gap
			if err := json.Unmarshal(raw, &g); err != nil {
				return nil, nil, fmt.Errorf("usage: line %d: %w", len(events)+len(gaps)+1, err)
			}
			gaps = append(gaps, g)
			continue
		}
		var ev meter.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, nil, fmt.Errorf("usage: line %d: %w", len(events)+len(gaps)+1, err)
		}
		events = append(events, ev)
	}
}
