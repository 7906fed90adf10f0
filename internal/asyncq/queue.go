// Package asyncq is Lambda's asynchronous invocation: the durable queue that
// InvocationType Event answers 202 from, the consumers that run its events
// through the invoke path, the retries Lambda makes, and the records and dead
// letters it sends to destinations.
//
// Events live in the JetStream work-queue stream SHOAL_ASYNC, one subject per
// function, so they survive a restart of shoal. Each function has a durable
// consumer and, in the control plane, a lane that fetches no more events than
// it may run: a lane's window opens while its invocations succeed and halves
// when they are throttled, so that events of a saturated function wait in
// the queue rather than fail (on Managed Instances, until a slot frees). A
// retried event goes back to the queue with a delay (NakWithDelay); what must
// outlive a delivery (how many times the function ran, its last error, the
// records still to send) is kept per event in the stream SHOAL_ASYNC_STATE.
//
// An event that succeeded never runs again: it is acknowledged (and its
// acknowledgement confirmed by the server) before anything else happens, or,
// when records must still be sent, marked done in its state first, so that a
// redelivery after a crash only finishes the sending. A crash between the
// function's answer and that mark (a round trip to the server) can still run
// the event again, as Lambda may.
//
// The package runs nothing itself: an Invoker runs each attempt, Settings say
// what applies to an event. It never decides on the invoke path of
// synchronous invocations and holds no lock while an event runs.
package asyncq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Stream names.
const (
	EventStream = "SHOAL_ASYNC"
	StateStream = "SHOAL_ASYNC_STATE"
)

// MaxEventBytes is Lambda's limit on an asynchronous invocation's payload (1 MB).
const MaxEventBytes = 1 << 20

// Config configures a Queue.
type Config struct {
	// Region and AccountID are those of the ARNs destinations are checked against.
	Region, AccountID string
	// Replicas of the streams (1 on one machine).
	Replicas int
	// Shared is set when other control planes (the nodes of a cluster)
	// consume the same queue: their lanes fetch from the same durable
	// consumers, and a queue opening does not take the consumers over (it
	// would take events another node is running).
	Shared bool
	// Policy holds the retry delays (default DefaultPolicy: Lambda's).
	Policy Policy
	// AckWait is how long an event may go unacknowledged before JetStream
	// gives it to another delivery; running events are kept alive with
	// heartbeats every third of it. Default 30 s.
	AckWait time.Duration
	// MaxWindow bounds the events of one function run at once (default 1000,
	// Lambda's account concurrency); InitialWindow is where a lane starts
	// (default 4).
	MaxWindow, InitialWindow int
	// Retention is how long an event may stay in the queue at most (default
	// 7 h: Lambda's largest maximum event age, 6 h, and an hour for shoal
	// to have been down).
	Retention time.Duration
	// DestinationRetention and DestinationMaxBytes bound SHOAL_DESTINATIONS
	// (default 4 days, as an SQS queue keeps messages, and 1 GiB).
	DestinationRetention time.Duration
	DestinationMaxBytes  int64
}

func (c *Config) setDefaults() {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.AccountID == "" {
		c.AccountID = "123456789012"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Policy.RetryDelays == nil && c.Policy.BackoffMin == 0 {
		c.Policy = DefaultPolicy()
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxWindow == 0 {
		c.MaxWindow = 1000
	}
	if c.InitialWindow == 0 {
		c.InitialWindow = 4
	}
	if c.Retention == 0 {
		c.Retention = 7 * time.Hour
	}
	if c.DestinationRetention == 0 {
		c.DestinationRetention = 4 * 24 * time.Hour
	}
	if c.DestinationMaxBytes == 0 {
		c.DestinationMaxBytes = 1 << 30
	}
}

// Validate fills defaults and checks the values.
func (c *Config) Validate() error {
	c.setDefaults()
	switch {
	case c.AckWait < time.Second:
		return fmt.Errorf("asyncq: ack wait %s: must be at least 1s", c.AckWait)
	case c.MaxWindow < 1 || c.InitialWindow < 1:
		return errors.New("asyncq: windows must be at least 1")
	case c.Retention < registry.MaxEventAgeSeconds*time.Second:
		return fmt.Errorf("asyncq: retention %s: must cover the largest maximum event age", c.Retention)
	case c.Policy.BackoffMin <= 0 || c.Policy.BackoffMax < c.Policy.BackoffMin ||
		c.Policy.ManagedBackoffMin <= 0 || c.Policy.ManagedBackoffMax < c.Policy.ManagedBackoffMin:
		return errors.New("asyncq: backoffs must be positive, their maximum at least their minimum")
	}
	for _, d := range c.Policy.RetryDelays {
		if d < 0 {
			return errors.New("asyncq: retry delays must not be negative")
		}
	}
	return nil
}

// Invoker runs one attempt of an event. Its errors are *awserr.Error: a 429
// is a throttle, a 5xx an error of shoal's, a ResourceNotFoundException a
// function or qualifier that is gone; any other refusal can never succeed.
type Invoker interface {
	InvokeEvent(ctx context.Context, ev *Event) (Response, error)
}

// Settings says what applies to an event.
type Settings interface {
	// EventSettings returns the settings of function invoked with qualifier; a
	// ResourceNotFoundException when the function or qualifier is gone.
	EventSettings(function, qualifier string) (EventSettings, error)
}

// EventSettings are what applies to an event.
type EventSettings struct {
	// RetryAttempts, MaxEventAge, OnSuccess and OnFailure are the qualifier's
	// asynchronous invocation config, with Lambda's defaults.
	registry.EventInvokeSettings
	// DeadLetter is the version's DeadLetterConfig target ("" if none).
	DeadLetter string
	// FunctionARN is the qualified ARN of the version the qualifier resolves
	// to, for records of events that never ran.
	FunctionARN string
	// ReservedZero is set when the function's reserved concurrency is 0.
	ReservedZero bool
	// Managed is set for a function on Managed Instances.
	Managed bool
}

// Watcher reports functions that change; *registry.Registry implements it.
type Watcher interface {
	Watch(ctx context.Context) (<-chan registry.Change, error)
}

// Deps are what a Queue works with.
type Deps struct {
	JetStream jetstream.JetStream
	Invoker   Invoker
	Settings  Settings
	// Watcher, when set, tells of deleted functions, whose events are dropped.
	Watcher Watcher
	// Metrics receives the queue's metrics; nil keeps them unregistered.
	Metrics prometheus.Registerer
	Clock   clock.Clock
	Logger  *slog.Logger
}

// Queue is the asynchronous invocation queue and its consumers.
//
// Concurrency: cfg, deps, streams and metrics are immutable after Open. mu
// guards lanes and closed. Each lane guards its own window. running holds the
// stream sequences of the events this process is handling.
type Queue struct {
	cfg     Config
	js      jetstream.JetStream
	events  jetstream.Stream
	state   jetstream.Stream
	inv     Invoker
	set     Settings
	clock   clock.Clock
	log     *slog.Logger
	metrics *metrics

	// ctx ends the lanes' fetching; work ends the attempts under way (only
	// when Close runs out of time).
	ctx        context.Context
	cancel     context.CancelFunc
	work       context.Context
	cancelWork context.CancelFunc
	handlers   sync.WaitGroup // attempts under way
	loops      sync.WaitGroup // lanes and the watch

	mu     sync.Mutex
	lanes  map[string]*lane
	closed bool

	running sync.Map // stream sequence → struct{}
}

// Open creates or opens the streams, takes over the consumers of the
// functions that have events queued and starts their lanes. Events left in
// flight by a process that stopped are delivered again at once.
func Open(ctx context.Context, cfg Config, deps Deps) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JetStream == nil || deps.Invoker == nil || deps.Settings == nil {
		return nil, errors.New("asyncq: JetStream, Invoker and Settings are required")
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	q := &Queue{cfg: cfg, js: deps.JetStream, inv: deps.Invoker, set: deps.Settings, clock: deps.Clock,
		log: deps.Logger.With("component", "asyncq"), metrics: newMetrics(), lanes: map[string]*lane{}}
	var err error
	q.events, err = q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        EventStream,
		Description: "shoal asynchronous invocations, one subject per function",
		Subjects:    []string{subjectPrefix + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      cfg.Retention,
		Duplicates:  15 * time.Minute,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("asyncq: stream %s: %w", EventStream, err)
	}
	q.state, err = q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              StateStream,
		Description:       "shoal asynchronous invocations: what outlives a delivery, per event",
		Subjects:          []string{stateSubjectPrefix + "*"},
		Storage:           jetstream.FileStorage,
		MaxAge:            cfg.Retention,
		MaxMsgsPerSubject: 1,
		AllowDirect:       true,
		Replicas:          cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("asyncq: stream %s: %w", StateStream, err)
	}
	if _, err := q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        DestinationStream,
		Description: "records and dead letters of asynchronous invocations sent to NATS subjects",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		MaxAge:      cfg.DestinationRetention,
		MaxBytes:    cfg.DestinationMaxBytes,
		Discard:     jetstream.DiscardOld,
		Duplicates:  15 * time.Minute,
		AllowDirect: true,
		Replicas:    cfg.Replicas,
	}); err != nil {
		return nil, fmt.Errorf("asyncq: stream %s: %w", DestinationStream, err)
	}

	q.ctx, q.cancel = context.WithCancel(context.Background())
	q.work, q.cancelWork = context.WithCancel(context.Background())
	// The consumers of an earlier process: recreated (unless other nodes
	// share them), so that the events it left in flight (or waiting out a
	// retry delay) come at once rather than when their ack wait ends. A
	// recreated consumer starts at the first event still queued:
	// acknowledged events are gone from a work queue.
	var names []string
	lister := q.events.ConsumerNames(ctx)
	for name := range lister.Name() {
		names = append(names, name)
	}
	if err := lister.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		q.Close(context.Background())
		return nil, fmt.Errorf("asyncq: consumers: %w", err)
	}
	for _, name := range names {
		fn, ok := strings.CutPrefix(name, consumerPrefix)
		if !ok {
			continue
		}
		if _, err := q.set.EventSettings(fn, ""); awserr.Is(err, awserr.CodeResourceNotFound) {
			// Deleted while no process ran: its events go, as they would have.
			if err := q.events.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				q.log.Warn("deleting the consumer of a deleted function", "function", fn, "err", err)
			}
			q.purge(ctx, fn)
			continue
		}
		if !cfg.Shared {
			if err := q.events.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				q.Close(context.Background())
				return nil, fmt.Errorf("asyncq: consumer %s: %w", name, err)
			}
		}
		if _, err := q.lane(ctx, fn); err != nil {
			q.Close(context.Background())
			return nil, err
		}
	}
	if deps.Watcher != nil {
		changes, err := deps.Watcher.Watch(q.ctx)
		if err != nil {
			q.Close(context.Background())
			return nil, fmt.Errorf("asyncq: watch: %w", err)
		}
		q.loops.Go(func() { q.watch(changes) })
	}
	// Registered once Open succeeds: a caller may try again after a
	// failure (a cluster still electing its leaders), and a registry takes
	// each series once.
	if deps.Metrics != nil {
		q.metrics.register(deps.Metrics)
	}
	return q, nil
}

// Enqueue queues an event accepted from a caller. It returns once the event
// is stored, with its Accepted time set.
func (q *Queue) Enqueue(ctx context.Context, ev *Event) error {
	if err := q.enqueue(ctx, ev, ""); err != nil {
		return err
	}
	q.metrics.received(ev.Function)
	return nil
}

// enqueue stores ev (with dedupe as its message id, when set) and makes sure
// its function has a lane.
func (q *Queue) enqueue(ctx context.Context, ev *Event, dedupe string) error {
	ev.Accepted = q.clock.Now()
	if _, err := q.js.PublishMsg(ctx, ev.message(dedupe)); err != nil {
		return fmt.Errorf("asyncq: queue event of %s: %w", ev.Function, err)
	}
	if _, err := q.lane(ctx, ev.Function); err != nil {
		// The event is stored; the next Enqueue or restart starts the lane.
		q.log.Error("no lane for a queued event", "function", ev.Function, "err", err)
	}
	return nil
}

// watch drops the queued events of deleted functions.
func (q *Queue) watch(changes <-chan registry.Change) {
	for ch := range changes {
		if ch.Function == "" || !ch.Deleted {
			continue
		}
		q.forget(ch.Function)
	}
}

// forget stops a deleted function's lane and drops its queued events.
func (q *Queue) forget(function string) {
	q.mu.Lock()
	l := q.lanes[function]
	delete(q.lanes, function)
	q.mu.Unlock()
	if l == nil {
		return
	}
	l.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.events.DeleteConsumer(ctx, consumerPrefix+function); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		q.log.Warn("deleting the consumer of a deleted function", "function", function, "err", err)
	}
	q.purge(ctx, function)
}

// purge drops the queued events of a deleted function, counting them.
func (q *Queue) purge(ctx context.Context, function string) {
	if info, err := q.events.Info(ctx, jetstream.WithSubjectFilter(eventSubject(function))); err == nil {
		q.metrics.droppedN(function, int(info.State.Subjects[eventSubject(function)]))
	}
	if err := q.events.Purge(ctx, jetstream.WithPurgeSubject(eventSubject(function))); err != nil {
		q.log.Warn("dropping the events of a deleted function", "function", function, "err", err)
	}
}

// Close stops fetching events and waits for the attempts under way until ctx
// ends; those still running then are cancelled and come back after a restart.
func (q *Queue) Close(ctx context.Context) {
	q.mu.Lock()
	q.closed = true
	lanes := q.lanes
	q.lanes = map[string]*lane{}
	q.mu.Unlock()
	if q.cancel != nil {
		q.cancel()
	}
	for _, l := range lanes {
		l.stop()
	}
	q.loops.Wait()
	done := make(chan struct{})
	go func() { q.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		q.cancelWork()
		<-done
	}
	if q.cancelWork != nil {
		q.cancelWork()
	}
}
