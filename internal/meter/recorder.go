package meter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures a Recorder.
type Config struct {
	// Dir is the journal's directory. Required.
	Dir string
	// SegmentBytes is the size at which the journal starts a new segment.
	SegmentBytes int64
	// Linger is how long the publisher waits after the first new event for
	// more before it publishes, so that a burst costs one round.
	Linger time.Duration
	// Batch is the most events published before their acks are awaited.
	Batch int
}

// Validate fills defaults and checks the values.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("meter: no journal directory")
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 4 << 20
	}
	if c.Linger == 0 {
		c.Linger = 20 * time.Millisecond
	}
	if c.Batch == 0 {
		c.Batch = 512
	}
	if c.SegmentBytes < 1024 || c.Batch < 1 || c.Linger < 0 {
		return fmt.Errorf("meter: segment bytes %d, batch %d, linger %s: out of range", c.SegmentBytes, c.Batch, c.Linger)
	}
	return nil
}

// Recorder journals usage events and publishes them to the ledger.
//
// Concurrency: Record may be called from any goroutine. The writer has its
// own lock; the publisher goroutine alone owns pub.
type Recorder struct {
	cfg    Config
	w      *writer
	pub    *publisher
	logger *slog.Logger

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	closed   atomic.Bool
	failed   atomic.Int64 // events that could not be journaled
	bufs     sync.Pool
	stopOnce sync.Once
}

// NewRecorder opens the journal in cfg.Dir and starts publishing it to js:
// first whatever an earlier process left there, then every new event.
func NewRecorder(cfg Config, js jetstream.JetStream, logger *slog.Logger) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w, err := openWriter(cfg.Dir, cfg.SegmentBytes)
	if err != nil {
		return nil, err
	}
	r := &Recorder{
		cfg: cfg, w: w, logger: logger.With("component", "meter"),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	r.pub = &publisher{dir: cfg.Dir, js: js, batch: cfg.Batch, live: w.current}
	r.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	go r.run()
	return r, nil
}

// Record journals ev and schedules its publication. It returns once the
// event is in the journal file.
func (r *Recorder) Record(ev *Event) {
	if r.closed.Load() {
		r.failed.Add(1)
		return
	}
	data, err := json.Marshal(ev)
	if err != nil {
		r.failed.Add(1)
		return
	}
	bp := r.bufs.Get().(*[]byte)
	buf := encodeLine((*bp)[:0], ev.ID, Subject(ev), data)
	if err := r.w.append(buf); err != nil {
		if r.failed.Add(1) == 1 {
			r.logger.Error("usage event not journaled", "id", ev.ID, "err", err)
		}
	}
	*bp = buf
	r.bufs.Put(bp)
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Failed is how many events could not be journaled.
func (r *Recorder) Failed() int64 { return r.failed.Load() }

// Published is how many events have been acknowledged by the ledger.
func (r *Recorder) Published() int64 { return r.pub.published.Load() }

func (r *Recorder) run() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		cancel()
	}()
	backoff := time.Duration(0)
	for {
		if _, err := r.pub.step(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			r.logger.Debug("usage events not published yet", "err", err, "retry", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-r.stop:
				return
			}
		}
		backoff = 0
		select {
		case <-r.kick:
			select {
			case <-time.After(r.cfg.Linger):
			case <-r.stop:
				return
			}
		case <-time.After(time.Second): // segments left by a failed round
		case <-r.stop:
			return
		}
	}
}

// Close stops recording, publishes what the journal holds until ctx ends,
// and closes the journal. Whatever could not be published stays in the
// journal for the next Recorder or Drain on the same directory.
func (r *Recorder) Close(ctx context.Context) error {
	if r.closed.Swap(true) {
		return nil
	}
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	if err := r.w.close(); err != nil {
		return fmt.Errorf("meter: journal: %w", err)
	}
	_, err := drain(ctx, r.pub)
	return err
}

// Drain publishes every event in the journal directory dir — one a dead
// process left behind — to js and removes the journal. It returns how many
// events it published, and gives up when ctx ends.
func Drain(ctx context.Context, js jetstream.JetStream, dir string) (int, error) {
	return drain(ctx, &publisher{dir: dir, js: js, batch: 512})
}

func drain(ctx context.Context, p *publisher) (int, error) {
	p.live = nil
	total := 0
	backoff := 50 * time.Millisecond
	for {
		n, err := p.step(ctx)
		total += n
		if err == nil {
			segs, lerr := segments(p.dir)
			if lerr != nil {
				return total, fmt.Errorf("meter: drain %s: %w", p.dir, lerr)
			}
			if len(segs) == 0 {
				return total, nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return total, fmt.Errorf("meter: drain %s: %w", p.dir, err)
		case <-time.After(backoff):
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// publisher publishes journal segments, oldest first, and deletes each once
// it is fully published and finished (a newer segment exists, or no writer).
type publisher struct {
	dir   string
	js    jetstream.JetStream
	batch int
	live  func() uint64 // the segment being written; nil when nobody writes

	seg       uint64 // the segment being read
	off       int64  // how much of it is published
	published atomic.Int64
}

// step publishes everything the journal holds now.
func (p *publisher) step(ctx context.Context) (int, error) {
	segs, err := segments(p.dir)
	if err != nil {
		return 0, err
	}
	total := 0
	for i, seg := range segs {
		if seg < p.seg {
			continue // deleted earlier; a listing can race with removal
		}
		if seg != p.seg {
			p.seg, p.off = seg, 0
		}
		finished := i < len(segs)-1 || p.live == nil || p.live() != seg
		base := p.off
		data, err := readFrom(p.dir, seg, base)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return total, err
		}
		lines, consumed := parseLines(data)
		n, err := p.publish(ctx, lines)
		total += n
		if err != nil {
			return total, err
		}
		p.off = base + int64(consumed) // damaged lines count as read
		if !finished {
			return total, nil
		}
		if err := os.Remove(filepath.Join(p.dir, segName(seg))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return total, err
		}
		p.seg, p.off = seg+1, 0
	}
	return total, nil
}

// publish sends lines in batches and advances the offset past each batch
// once JetStream has acknowledged all of it.
func (p *publisher) publish(ctx context.Context, lines []line) (int, error) {
	base := p.off
	sent := 0
	for len(lines) > 0 {
		n := min(len(lines), p.batch)
		futures := make([]jetstream.PubAckFuture, 0, n)
		for _, l := range lines[:n] {
			msg := &nats.Msg{Subject: l.subject, Data: l.data, Header: nats.Header{nats.MsgIdHdr: []string{l.id}}}
			f, err := p.js.PublishMsgAsync(msg)
			if err != nil {
				return sent, err
			}
			futures = append(futures, f)
		}
		if err := awaitAcks(ctx, futures); err != nil {
			return sent, err
		}
		p.off = base + int64(lines[n-1].end)
		lines = lines[n:]
		sent += n
		p.published.Add(int64(n))
	}
	return sent, nil
}

func awaitAcks(ctx context.Context, futures []jetstream.PubAckFuture) error {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-timeout.C:
			return errors.New("meter: no acknowledgement from the ledger")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Subject is the ledger subject of ev:
// shoal.usage.<kind>.<function, or capacity provider for instance segments>.
func Subject(ev *Event) string {
	owner := ev.Function
	if ev.Kind == KindInstance {
		owner = ev.CapacityProvider
	}
	return SubjectPrefix + string(ev.Kind) + "." + token(owner)
}

// token makes s a single NATS subject token.
func token(s string) string {
	if s == "" {
		return "_"
	}
	if !strings.ContainsAny(s, ". *>\t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', ' ', '*', '>', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}
