package asyncq

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/randid"
	"github.com/shoal-dev/shoal/internal/registry"
)

// The queue against a real JetStream. A scripted invoker stands in for the
// invoke path (the end-to-end tests run the real one); what it answers is
// the event's "op": ok, fail, throttle:N and service:N (N refusals, then
// success), block (until released).

type scripted struct {
	mu       sync.Mutex
	calls    map[string]int // by request id
	byFn     map[string][]Event
	settings map[string]EventSettings // by function; missing: gone
	release  chan struct{}
	released sync.Once
	started  chan string
}

// unblock lets the blocked attempts return.
func (s *scripted) unblock() { s.released.Do(func() { close(s.release) }) }

func newScripted() *scripted {
	return &scripted{calls: map[string]int{}, byFn: map[string][]Event{}, settings: map[string]EventSettings{},
		release: make(chan struct{}), started: make(chan string, 100)}
}

func (s *scripted) set(function string, mutate func(*EventSettings)) {
	st := EventSettings{EventInvokeSettings: (*registry.EventInvokeConfig)(nil).Settings(),
		FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:" + function + ":$LATEST"}
	if mutate != nil {
		mutate(&st)
	}
	s.mu.Lock()
	s.settings[function] = st
	s.mu.Unlock()
}

func (s *scripted) EventSettings(function, qualifier string) (EventSettings, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.settings[function]
	if !ok {
		return EventSettings{}, awserr.NotFound("Function not found: %s", function)
	}
	return st, nil
}

func (s *scripted) InvokeEvent(ctx context.Context, ev *Event) (Response, error) {
	s.mu.Lock()
	s.calls[ev.RequestID]++
	n := s.calls[ev.RequestID]
	s.byFn[ev.Function] = append(s.byFn[ev.Function], *ev)
	s.mu.Unlock()
	var in struct {
		Op string `json:"op"`
	}
	_ = json.Unmarshal(ev.Payload, &in)
	ok := Response{FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:" + ev.Function + ":$LATEST", ExecutedVersion: "$LATEST",
		Payload: []byte(`{"answer":` + strconv.Itoa(n) + `}`)}
	op, arg, _ := strings.Cut(in.Op, ":")
	refusals, _ := strconv.Atoi(arg)
	switch op {
	case "fail":
		ok.FunctionError = "Unhandled"
		ok.Payload = []byte(`{"errorMessage":"failure ` + strconv.Itoa(n) + `","errorType":"Exception"}`)
	case "throttle":
		if n <= refusals {
			return Response{}, awserr.Throttled(awserr.ReasonConcurrentInvocationLimitExceeded, "Rate Exceeded.")
		}
	case "service":
		if n <= refusals {
			return Response{}, awserr.Service(nil, "The function could not be invoked.")
		}
	case "block":
		s.started <- ev.RequestID
		select {
		case <-s.release:
		case <-ctx.Done():
			return Response{}, ctx.Err()
		}
	}
	return ok, nil
}

func (s *scripted) count(requestID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[requestID]
}

func (s *scripted) events(function string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.byFn[function]...)
}

// fastPolicy is Lambda's policy with its waits shortened.
func fastPolicy() Policy {
	return Policy{RetryDelays: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond},
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		ManagedBackoffMin: 5 * time.Millisecond, ManagedBackoffMax: 20 * time.Millisecond}
}

type harness struct {
	t       *testing.T
	bus     *bus.Bus
	inv     *scripted
	q       *Queue
	metrics *prometheus.Registry
}

func newHarness(t *testing.T, policy Policy) *harness {
	t.Helper()
	b, err := bus.Start(context.Background(), bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	h := &harness{t: t, bus: b, inv: newScripted()}
	t.Cleanup(h.inv.unblock)
	h.open(policy)
	return h
}

// open opens a queue on the harness's bus (again, after a restart).
func (h *harness) open(policy Policy) *Queue {
	h.t.Helper()
	h.metrics = prometheus.NewRegistry()
	q, err := Open(context.Background(), Config{Policy: policy, AckWait: 5 * time.Second},
		Deps{JetStream: h.bus.JetStream(), Invoker: h.inv, Settings: h.inv, Metrics: h.metrics})
	if err != nil {
		h.t.Fatal(err)
	}
	h.q = q
	h.t.Cleanup(func() { closeQueue(q) })
	return q
}

func (h *harness) enqueue(function, payload string) string {
	h.t.Helper()
	id := randid.UUID()
	if err := h.q.Enqueue(context.Background(), &Event{RequestID: id, Function: function, Payload: []byte(payload)}); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// subscribe collects what is published on subject.
func (h *harness) subscribe(subject string) func() []*nats.Msg {
	h.t.Helper()
	var mu sync.Mutex
	var got []*nats.Msg
	sub, err := h.bus.Conn().Subscribe(subject, func(m *nats.Msg) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = h.bus.Conn().Flush()
	return func() []*nats.Msg {
		mu.Lock()
		defer mu.Unlock()
		return append([]*nats.Msg(nil), got...)
	}
}

func (h *harness) queued(function string) int {
	h.t.Helper()
	info, err := h.q.events.Info(context.Background(), jetstream.WithSubjectFilter(eventSubject(function)))
	if err != nil {
		h.t.Fatal(err)
	}
	return int(info.State.Subjects[eventSubject(function)])
}

// closeQueue closes q, cancelling what still runs after a few seconds.
func closeQueue(q *Queue) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q.Close(ctx)
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func record(t *testing.T, m *nats.Msg) Record {
	t.Helper()
	var r Record
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("record %q: %v", m.Data, err)
	}
	return r
}

func TestQueueRunsEachEventOnce(t *testing.T) {
	h := newHarness(t, fastPolicy())
	h.inv.set("f", nil)
	var ids []string
	for i := range 50 {
		ids = append(ids, h.enqueue("f", fmt.Sprintf(`{"op":"ok","n":%d}`, i)))
	}
	poll.Until(t, 20*time.Second, func() error {
		if n := len(h.inv.events("f")); n < len(ids) {
			return fmt.Errorf("%d of %d events ran", n, len(ids))
		}
		if n := h.queued("f"); n > 0 {
			return fmt.Errorf("%d events still queued", n)
		}
		return nil
	})
	for _, id := range ids {
		if n := h.inv.count(id); n != 1 {
			t.Errorf("event %s ran %d times", id, n)
		}
	}
	if got := counter(h.q.metrics.eventsReceived.WithLabelValues("f")); got != 50 {
		t.Errorf("AsyncEventsReceived %v, want 50", got)
	}
	var age dto.Metric
	if err := h.q.metrics.eventAge.WithLabelValues("f").(prometheus.Histogram).Write(&age); err != nil || age.GetHistogram().GetSampleCount() != 50 {
		t.Errorf("AsyncEventAge observed %d ages (%v), want 50", age.GetHistogram().GetSampleCount(), err)
	}
}

func TestQueueRetriesFunctionErrors(t *testing.T) {
	h := newHarness(t, fastPolicy())
	h.inv.set("f", func(s *EventSettings) {
		s.OnFailure = "arn:aws:nats:us-east-1:123456789012:lambda.f.failed"
		s.DeadLetter = "arn:aws:nats:us-east-1:123456789012:lambda.f.dlq"
	})
	failed, dead := h.subscribe("lambda.f.failed"), h.subscribe("lambda.f.dlq")
	id := h.enqueue("f", `{"op":"fail"}`)
	poll.Until(t, 20*time.Second, func() error {
		if len(failed()) == 0 || len(dead()) == 0 {
			return fmt.Errorf("records: %d, dead letters: %d", len(failed()), len(dead()))
		}
		return nil
	})
	if n := h.inv.count(id); n != 3 {
		t.Errorf("the function ran %d times, want 3 (2 retries)", n)
	}
	rec := record(t, failed()[0])
	if rec.RequestContext.Condition != ConditionRetriesExhausted || rec.RequestContext.ApproximateInvokeCount != 3 ||
		rec.RequestContext.RequestID != id || rec.ResponseContext == nil || rec.ResponseContext.FunctionError != "Unhandled" ||
		string(rec.ResponsePayload) != `{"errorMessage":"failure 3","errorType":"Exception"}` || string(rec.RequestPayload) != `{"op":"fail"}` {
		t.Errorf("record: %s", mustJSON(rec))
	}
	dl := dead()[0]
	if string(dl.Data) != `{"op":"fail"}` || dl.Header.Get("RequestID") != id || dl.Header.Get("ErrorCode") != "200" ||
		dl.Header.Get("ErrorMessage") != "failure 3" {
		t.Errorf("dead letter %q, headers %v", dl.Data, dl.Header)
	}
	if got := counter(h.q.metrics.eventsDropped.WithLabelValues("f")); got != 1 {
		t.Errorf("AsyncEventsDropped %v, want 1", got)
	}
}

func TestQueueMaximumAgeLooksAhead(t *testing.T) {
	h := newHarness(t, DefaultPolicy()) // a minute before the first retry
	h.inv.set("f", func(s *EventSettings) {
		s.MaxEventAge = time.Minute
		s.OnFailure = "arn:aws:nats:us-east-1:123456789012:lambda.f.failed"
	})
	failed := h.subscribe("lambda.f.failed")
	id := h.enqueue("f", `{"op":"fail"}`)
	poll.Until(t, 20*time.Second, func() error {
		if len(failed()) == 0 {
			return fmt.Errorf("no record")
		}
		return nil
	})
	rec := record(t, failed()[0])
	if rec.RequestContext.Condition != ConditionEventAgeExceeded || rec.RequestContext.ApproximateInvokeCount != 1 || h.inv.count(id) != 1 {
		t.Errorf("record %s after %d runs", mustJSON(rec), h.inv.count(id))
	}
}

func TestQueueWaitsOutThrottles(t *testing.T) {
	h := newHarness(t, fastPolicy())
	h.inv.set("f", func(s *EventSettings) { s.OnSuccess = "arn:aws:nats:us-east-1:123456789012:lambda.f.ok" })
	ok := h.subscribe("lambda.f.ok")
	throttled := h.enqueue("f", `{"op":"throttle:4"}`)
	failing := h.enqueue("f", `{"op":"service:2"}`)
	poll.Until(t, 20*time.Second, func() error {
		if len(ok()) < 2 {
			return fmt.Errorf("%d records", len(ok()))
		}
		return nil
	})
	if h.inv.count(throttled) != 5 || h.inv.count(failing) != 3 {
		t.Errorf("attempts: %d after 4 throttles, %d after 2 errors of the platform", h.inv.count(throttled), h.inv.count(failing))
	}
	for _, m := range ok() {
		// Throttles and errors of the platform are not runs of the function.
		if rec := record(t, m); rec.RequestContext.ApproximateInvokeCount != 1 || rec.RequestContext.Condition != ConditionSuccess {
			t.Errorf("record %s", m.Data)
		}
	}
}

func TestQueueZeroReservedConcurrency(t *testing.T) {
	h := newHarness(t, fastPolicy())
	h.inv.set("f", func(s *EventSettings) {
		s.ReservedZero = true
		s.OnFailure = "arn:aws:nats:us-east-1:123456789012:lambda.f.failed"
	})
	failed := h.subscribe("lambda.f.failed")
	id := h.enqueue("f", `{"op":"ok"}`)
	poll.Until(t, 20*time.Second, func() error {
		if len(failed()) == 0 {
			return fmt.Errorf("no record")
		}
		return nil
	})
	rec := record(t, failed()[0])
	if h.inv.count(id) != 0 || rec.RequestContext.Condition != ConditionZeroReservedConcurrency ||
		rec.RequestContext.ApproximateInvokeCount != 0 || rec.ResponseContext != nil || rec.ResponsePayload != nil {
		t.Errorf("record %s after %d runs", mustJSON(rec), h.inv.count(id))
	}
}

func TestQueueFunctionDestination(t *testing.T) {
	h := newHarness(t, fastPolicy())
	h.inv.set("f", func(s *EventSettings) { s.OnSuccess = "arn:aws:lambda:us-east-1:123456789012:function:dest" })
	h.inv.set("dest", nil)
	id := h.enqueue("f", `{"op":"ok"}`)
	poll.Until(t, 20*time.Second, func() error {
		if len(h.inv.events("dest")) == 0 {
			return fmt.Errorf("the destination did not run")
		}
		return nil
	})
	var rec Record
	ev := h.inv.events("dest")[0]
	if err := json.Unmarshal(ev.Payload, &rec); err != nil || rec.RequestContext.RequestID != id || ev.RequestID == id ||
		ev.InvokedARN != "arn:aws:lambda:us-east-1:123456789012:function:dest" {
		t.Errorf("the destination's event: %+v (%v)", ev, err)
	}
}

// TestQueueFinishesADoneEvent: an event marked done whose acknowledgement
// never came (the process stopped in between) is not run again: its
// deliveries are finished.
func TestQueueFinishesADoneEvent(t *testing.T) {
	h := newHarness(t, fastPolicy())
	h.inv.set("f", nil)
	h.q.Close(context.Background())
	ctx := context.Background()
	ev := Event{RequestID: randid.UUID(), Function: "f", Payload: []byte(`{"op":"ok"}`), Accepted: time.Now()}
	ack, err := h.bus.JetStream().PublishMsg(ctx, ev.message(""))
	if err != nil {
		t.Fatal(err)
	}
	st := eventState{Runs: 1, Done: "success", Deliveries: []delivery{{Target: "arn:aws:nats:us-east-1:123456789012:lambda.f.ok",
		Body: []byte(`{"version":"1.0"}`), ID: ev.RequestID + ":Success"}}}
	if _, err := h.bus.JetStream().Publish(ctx, stateSubject(ack.Sequence), mustJSON(st)); err != nil {
		t.Fatal(err)
	}
	ok := h.subscribe("lambda.f.ok")
	h.open(fastPolicy())
	if _, err := h.q.lane(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, func() error {
		if len(ok()) == 0 || h.queued("f") > 0 {
			return fmt.Errorf("%d records, %d queued", len(ok()), h.queued("f"))
		}
		return nil
	})
	if n := h.inv.count(ev.RequestID); n != 0 {
		t.Errorf("a done event ran %d times", n)
	}
}

// TestQueueTakesOverEventsInFlight: a queue opened after another stopped
// without finishing its events (as a killed process) runs them at once, not
// when their ack wait ends.
func TestQueueTakesOverEventsInFlight(t *testing.T) {
	h := newHarness(t, fastPolicy())
	h.inv.set("f", nil)
	first := h.q
	id := h.enqueue("f", `{"op":"block"}`)
	<-h.inv.started
	// The first process "dies": it fetches nothing more and never answers.
	first.cancel()
	h.open(fastPolicy())
	select {
	case got := <-h.inv.started:
		if got != id {
			t.Fatalf("started %s", got)
		}
	case <-time.After(3 * time.Second): // well within the 5 s ack wait
		t.Fatal("the event in flight was not taken over at once")
	}
	h.inv.unblock()
	poll.Until(t, 20*time.Second, func() error {
		if n := h.queued("f"); n > 0 {
			return fmt.Errorf("%d queued", n)
		}
		return nil
	})
}

// TestQueueSharedLeavesConsumersAlone: a queue opening beside others (the
// nodes of a cluster) does not take over the consumers, whose events another
// node may be running.
func TestQueueSharedLeavesConsumersAlone(t *testing.T) {
	h := newHarness(t, fastPolicy())
	h.inv.set("f", nil)
	h.enqueue("f", `{"op":"block"}`)
	<-h.inv.started
	ctx := context.Background()
	before, err := h.q.events.Consumer(ctx, consumerPrefix+"f")
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(ctx, Config{Policy: fastPolicy(), AckWait: 5 * time.Second, Shared: true},
		Deps{JetStream: h.bus.JetStream(), Invoker: h.inv, Settings: h.inv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeQueue(second) })
	after, err := h.q.events.Consumer(ctx, consumerPrefix+"f")
	if err != nil {
		t.Fatal(err)
	}
	if !after.CachedInfo().Created.Equal(before.CachedInfo().Created) {
		t.Error("a shared queue made the consumer anew")
	}
	if info, err := after.Info(ctx); err != nil || info.NumAckPending != 1 {
		t.Errorf("the event in flight: %+v, %v", info, err)
	}
	h.inv.unblock()
}

type fakeWatcher chan registry.Change

func (w fakeWatcher) Watch(ctx context.Context) (<-chan registry.Change, error) { return w, nil }

func TestQueueDropsTheEventsOfADeletedFunction(t *testing.T) {
	b, err := bus.Start(context.Background(), bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	inv := newScripted()
	t.Cleanup(inv.unblock)
	inv.set("f", nil)
	w := make(fakeWatcher)
	metrics := prometheus.NewRegistry()
	q, err := Open(context.Background(), Config{Policy: fastPolicy()}, Deps{JetStream: b.JetStream(), Invoker: inv, Settings: inv,
		Watcher: w, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeQueue(q) })
	h := &harness{t: t, bus: b, inv: inv, q: q}
	h.enqueue("f", `{"op":"block"}`)
	<-inv.started
	for range 3 {
		h.enqueue("f", `{"op":"block"}`)
	}
	inv.mu.Lock()
	delete(inv.settings, "f")
	inv.mu.Unlock()
	w <- registry.Change{Function: "f", Deleted: true}
	poll.Until(t, 20*time.Second, func() error {
		if n := h.queued("f"); n > 0 {
			return fmt.Errorf("%d still queued", n)
		}
		return nil
	})
	inv.unblock()
	close(w)
	if got := counter(q.metrics.eventsDropped.WithLabelValues("f")); got < 3 {
		t.Errorf("AsyncEventsDropped %v, want the 3 queued at least", got)
	}
}

// A function deleted while no queue ran loses its events when one opens.
func TestQueueDropsTheEventsOfAFunctionDeletedMeanwhile(t *testing.T) {
	h := newHarness(t, fastPolicy())
	h.inv.set("f", nil)
	h.enqueue("f", `{"op":"block"}`)
	<-h.inv.started
	h.q.cancel() // the process stops; its event stays in flight
	for range 3 {
		ev := Event{RequestID: randid.UUID(), Function: "f", Payload: []byte(`{"op":"ok"}`), Accepted: time.Now()}
		if _, err := h.bus.JetStream().PublishMsg(context.Background(), ev.message("")); err != nil {
			t.Fatal(err)
		}
	}
	h.inv.mu.Lock()
	delete(h.inv.settings, "f")
	h.inv.mu.Unlock()
	h.open(fastPolicy())
	if n := h.queued("f"); n != 0 {
		t.Errorf("%d events of a deleted function still queued", n)
	}
	if got := counter(h.q.metrics.eventsDropped.WithLabelValues("f")); got != 4 {
		t.Errorf("AsyncEventsDropped %v, want 4", got)
	}
	if names := h.q.events.ConsumerNames(context.Background()); names != nil {
		for n := range names.Name() {
			t.Errorf("consumer %s left", n)
		}
	}
}

// A caller may open the queue again after a failure (a cluster still
// electing its stream leaders): the failed try leaves nothing in the
// metrics registry, and the one that succeeds registers the series.
func TestQueueOpensAgainAfterAFailure(t *testing.T) {
	b, err := bus.Start(context.Background(), bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	inv := newScripted()
	t.Cleanup(inv.unblock)
	metrics := prometheus.NewRegistry()
	deps := Deps{JetStream: b.JetStream(), Invoker: inv, Settings: inv, Metrics: metrics}
	failed, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(failed, Config{Policy: fastPolicy()}, deps); err == nil {
		t.Fatal("Open with a cancelled context succeeded")
	}
	q, err := Open(context.Background(), Config{Policy: fastPolicy()}, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeQueue(q) })
	q.metrics.received("f")
	families, err := metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	if !slices.Contains(names, "shoal_function_async_events_received_total") {
		t.Errorf("series registered: %v", names)
	}
}
