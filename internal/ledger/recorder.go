package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/meter"
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
	// Source names who records (an agent's instance id; "" is the control
	// plane): it is the last token of every subject the recorder publishes
	// to, so that the bus can hold each source to its own.
	Source string
}

// Validate fills defaults and checks the values.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("ledger: no journal directory")
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
		return fmt.Errorf("ledger: segment bytes %d, batch %d, linger %s: out of range", c.SegmentBytes, c.Batch, c.Linger)
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

	kick      chan struct{}
	flush     chan struct{} // Sync: publish now, without the linger
	stop      chan struct{}
	done      chan struct{}
	closed    atomic.Bool
	failed    atomic.Int64 // events that could not be journaled
	failing   atomic.Bool  // the last event could not be journaled
	pubFailed atomic.Int64 // publication rounds that failed (their events wait in the journal)
	bufs      sync.Pool
	stopOnce  sync.Once
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
		kick: make(chan struct{}, 1), flush: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	r.pub = &publisher{dir: cfg.Dir, js: js, batch: cfg.Batch, maxBytes: maxMessage, live: w.current, logger: r.logger}
	r.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	go r.run()
	return r, nil
}

// Record journals ev and schedules its publication. It returns once the
// event is in the journal file.
func (r *Recorder) Record(ev *meter.Event) {
	if r.closed.Load() {
		r.failed.Add(1)
		return
	}
	bp := r.bufs.Get().(*[]byte)
	buf := append((*bp)[:0], ev.ID...)
	buf = append(buf, '\t')
	buf = appendSubject(buf, ev, r.cfg.Source)
	buf = append(buf, '\t')
	buf = meter.AppendJSON(buf, ev)
	buf = append(buf, '\n')
	if err := r.w.append(buf); err != nil {
		r.failed.Add(1)
		if !r.failing.Swap(true) {
			r.logger.Error("usage events are not being journaled: they are lost until this clears",
				"id", ev.ID, "err", err, "lost_so_far", r.failed.Load())
		}
	} else if r.failing.Load() && r.failing.Swap(false) {
		r.logger.Warn("usage events are journaled again", "lost", r.failed.Load())
	}
	*bp = buf
	r.bufs.Put(bp)
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Sync waits until every event recorded before it was called is published
// (a reader of the ledger then finds them), or ctx ends. After Close it
// returns at once.
func (r *Recorder) Sync(ctx context.Context) error {
	if r.closed.Load() {
		return nil
	}
	target := r.w.position()
	select {
	case r.flush <- struct{}{}:
	default:
	}
	for {
		at, moved := r.pub.mark.get()
		if at.reached(target) {
			return nil
		}
		select {
		case <-moved:
		case <-r.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("ledger: events not yet published: %w", ctx.Err())
		}
	}
}

// Failed is how many events could not be journaled: they are in no ledger.
// Closed recorders count what they were still given.
func (r *Recorder) Failed() int64 { return r.failed.Load() }

// PublishFailures is how many rounds of publication failed; their events
// stay in the journal and go in a later round.
func (r *Recorder) PublishFailures() int64 { return r.pubFailed.Load() }

// Damaged is how many journal lines were found damaged and not published.
func (r *Recorder) Damaged() int64 { return r.pub.damaged.Load() }

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
		var err error
		if perr := guard.Run(r.logger, "publishing usage events", func() { _, err = r.pub.step(ctx) }); perr != nil {
			err = perr
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.pubFailed.Add(1)
			if backoff == 0 {
				r.logger.Warn("usage events not published yet; they wait in the journal", "err", err)
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
		if backoff > 0 {
			r.logger.Info("usage events published again")
		}
		backoff = 0
		select {
		case <-r.kick:
			select {
			case <-time.After(r.cfg.Linger):
			case <-r.flush:
			case <-r.stop:
				return
			}
		case <-r.flush:
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
	r.pub.closeSegment()
	if err := r.w.close(); err != nil {
		return fmt.Errorf("ledger: journal: %w", err)
	}
	_, err := drain(ctx, r.pub)
	return err
}

// Drain publishes every event in the journal directory dir — one a dead
// process left behind — to js and removes the journal. It returns how many
// events it published, and gives up when ctx ends.
func Drain(ctx context.Context, js jetstream.JetStream, dir string) (int, error) {
	return drain(ctx, &publisher{dir: dir, js: js, batch: 512, maxBytes: maxMessage})
}

func drain(ctx context.Context, p *publisher) (int, error) {
	p.live = nil
	defer p.closeSegment()
	total := 0
	backoff := 50 * time.Millisecond
	for {
		n, err := p.step(ctx)
		total += n
		if err == nil {
			segs, lerr := segments(p.dir)
			if lerr != nil {
				return total, fmt.Errorf("ledger: drain %s: %w", p.dir, lerr)
			}
			if len(segs) == 0 {
				return total, nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return total, fmt.Errorf("ledger: drain %s: %w", p.dir, err)
		case <-time.After(backoff):
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// publisher publishes journal segments, oldest first, and deletes each once
// it is fully published and finished (a newer segment exists, or no writer).
//
// Events travel in batches: the lines of the byte range [s, e) of a segment,
// one message per subject, each message a newline-delimited list of events
// whose message id is "<journal id>-<segment>-<s>-<k>". Before it publishes a
// range the publisher records it as intended in the segment's position file,
// and after the acknowledgement as done; a publisher that finds an intended
// range not done (its predecessor died in between) publishes exactly that
// range again, under the same ids, so JetStream drops what it had stored.
type publisher struct {
	dir      string
	js       jetstream.JetStream
	batch    int
	maxBytes int
	live     func() uint64 // the segment being written; nil when nobody writes
	logger   *slog.Logger  // nil: damaged lines are only counted

	jid       string // the journal's id, read on first use
	buf       []byte // read buffer
	lines     []line // parse buffer
	seg       uint64 // the segment being read
	pos       *os.File
	done      int64 // how much of seg is published
	published atomic.Int64
	damaged   atomic.Int64 // journal lines skipped as damaged
	mark      watermark    // seg and done, for Sync
}

// journalPos is a position in the journal: a segment and an offset in it.
type journalPos struct {
	seg uint64
	off int64
}

// reached reports whether everything before t is behind p.
func (p journalPos) reached(t journalPos) bool {
	return p.seg > t.seg || (p.seg == t.seg && p.off >= t.off)
}

// position is where the next line will go: what is before it is journaled.
func (w *writer) position() journalPos {
	w.mu.Lock()
	defer w.mu.Unlock()
	return journalPos{seg: w.seg, off: w.size}
}

// watermark is how far the publisher has published, and a channel closed
// when it moves on.
type watermark struct {
	mu    sync.Mutex
	at    journalPos
	moved chan struct{}
}

func (m *watermark) get() (journalPos, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.moved == nil {
		m.moved = make(chan struct{})
	}
	return m.at, m.moved
}

func (m *watermark) set(at journalPos) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.at = at
	if m.moved != nil {
		close(m.moved)
		m.moved = nil
	}
}

// step publishes everything the journal holds now.
func (p *publisher) step(ctx context.Context) (int, error) {
	if p.jid == "" {
		id, err := journalID(p.dir)
		if err != nil {
			return 0, err
		}
		p.jid = id
	}
	if p.live != nil && p.pos != nil && p.seg == p.live() {
		// Still on the segment being written: no need to list the directory.
		return p.publishSegment(ctx)
	}
	segs, err := segments(p.dir)
	if err != nil {
		return 0, err
	}
	total := 0
	for i, seg := range segs {
		if seg < p.seg {
			continue // deleted earlier; a listing can race with removal
		}
		if seg != p.seg || p.pos == nil {
			if err := p.openSegment(seg); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				return total, err
			}
		}
		finished := i < len(segs)-1 || p.live == nil || p.live() != seg
		n, err := p.publishSegment(ctx)
		total += n
		if err != nil {
			return total, err
		}
		if !finished {
			return total, nil
		}
		p.closeSegment()
		for _, name := range []string{segName(seg), posName(seg)} {
			if err := os.Remove(filepath.Join(p.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return total, err
			}
		}
		p.seg = seg + 1
		p.mark.set(journalPos{seg: p.seg})
	}
	return total, nil
}

// openSegment opens seg's position file and publishes an intended range
// left unfinished.
func (p *publisher) openSegment(seg uint64) error {
	p.closeSegment()
	if _, err := os.Stat(filepath.Join(p.dir, segName(seg))); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(p.dir, posName(seg)), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	p.seg, p.pos, p.done = seg, f, 0
	var b [16]byte
	if n, _ := f.ReadAt(b[:], 0); n == 16 {
		p.done = int64(binary.LittleEndian.Uint64(b[:8]))
	}
	p.mark.set(journalPos{seg: seg, off: p.done})
	return nil
}

func (p *publisher) closeSegment() {
	if p.pos != nil {
		_ = p.pos.Close()
		p.pos = nil
	}
}

// intended reads the range recorded as intended, if it is not done.
func (p *publisher) intended() int64 {
	var b [16]byte
	if n, _ := p.pos.ReadAt(b[:], 0); n == 16 {
		if e := int64(binary.LittleEndian.Uint64(b[8:])); e > p.done {
			return e
		}
	}
	return 0
}

func (p *publisher) writePos(done, intent int64) error {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(done))
	binary.LittleEndian.PutUint64(b[8:], uint64(intent))
	_, err := p.pos.WriteAt(b[:], 0)
	return err
}

// publishSegment publishes the current segment from where it was left.
func (p *publisher) publishSegment(ctx context.Context) (int, error) {
	data, err := readFrom(p.dir, p.seg, p.done, p.buf)
	if err != nil {
		return 0, err
	}
	if cap(data) <= 8<<20 {
		p.buf = data[:0] // reused by the next round
	}
	sent := 0
	if e := p.intended(); e > 0 {
		// A range a dead predecessor may have stored: the same range again.
		if e-p.done > int64(len(data)) {
			e = p.done + int64(len(data))
		}
		skip := int(e - p.done)
		lines, _, bad := parseLines(p.lines[:0], data[:skip])
		p.lines = lines[:0]
		n, err := p.publishRange(ctx, lines, e)
		sent += n
		if err != nil {
			return sent, err
		}
		p.countDamaged(bad)
		data = data[skip:]
	}
	for {
		lines, consumed, _ := parseLines(p.lines[:0], data)
		p.lines = lines[:0]
		if consumed == 0 {
			return sent, nil
		}
		// The range: up to batch lines and maxBytes bytes.
		k, size := 0, 0
		for k < len(lines) && k < p.batch && (k == 0 || size+len(lines[k].data) <= p.maxBytes) {
			size += len(lines[k].data) + 1
			k++
		}
		end := consumed
		if k < len(lines) {
			end = lines[k-1].end
		}
		if k == 0 { // only damaged lines: skip them
			end = consumed
		}
		e := p.done + int64(end)
		if err := p.writePos(p.done, e); err != nil {
			return sent, err
		}
		n, err := p.publishRange(ctx, lines[:k], e)
		sent += n
		if err != nil {
			return sent, err
		}
		// The range's lines that were not published were damaged.
		p.countDamaged(bytes.Count(data[:end], []byte{'\n'}) - k)
		data = data[end:]
	}
}

// countDamaged counts n damaged journal lines, which no ledger will hold.
func (p *publisher) countDamaged(n int) {
	if n > 0 {
		p.damaged.Add(int64(n))
		if p.logger != nil {
			p.logger.Error("damaged usage journal lines skipped: their events are lost", "segment", p.seg, "lines", n)
		}
	}
}

// publishRange publishes lines as the range [p.done, e) and marks it done.
func (p *publisher) publishRange(ctx context.Context, lines []line, e int64) (int, error) {
	// One message per subject, in order of first appearance.
	type group struct {
		subject []byte
		body    []byte
	}
	var groups []group
	for _, l := range lines {
		k := slices.IndexFunc(groups, func(g group) bool { return bytes.Equal(g.subject, l.subject) })
		if k < 0 {
			groups = append(groups, group{subject: l.subject, body: make([]byte, 0, 64*1024)})
			k = len(groups) - 1
		}
		groups[k].body = append(append(groups[k].body, l.data...), '\n')
	}
	futures := make([]jetstream.PubAckFuture, 0, len(groups))
	prefix := p.jid + "-" + strconv.FormatUint(p.seg, 10) + "-" + strconv.FormatInt(p.done, 10) + "-"
	for k, g := range groups {
		msg := &nats.Msg{Subject: string(g.subject), Data: g.body,
			Header: nats.Header{nats.MsgIdHdr: []string{prefix + strconv.Itoa(k)}}}
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return 0, err
		}
		futures = append(futures, f)
	}
	if err := awaitAcks(ctx, futures); err != nil {
		return 0, err
	}
	if err := p.writePos(e, e); err != nil {
		return 0, err
	}
	p.done = e
	p.published.Add(int64(len(lines)))
	p.mark.set(journalPos{seg: p.seg, off: e})
	return len(lines), nil
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
			return errors.New("ledger: no acknowledgement from the ledger")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Subject is the ledger subject of ev recorded by source:
// shoal.usage.<kind>.<function, or capacity provider for instance
// segments>.<source> (ControlPlaneSource when source is "").
func Subject(ev *meter.Event, source string) string { return string(appendSubject(nil, ev, source)) }

// ControlPlaneSource is the source token of what the control plane records.
const ControlPlaneSource = "cp"

func appendSubject(b []byte, ev *meter.Event, source string) []byte {
	owner := ev.Function
	if ev.Kind == meter.KindInstance {
		owner = ev.CapacityProvider
	}
	if source == "" {
		source = ControlPlaneSource
	}
	b = append(b, SubjectPrefix...)
	b = append(b, ev.Kind...)
	b = append(b, '.')
	b = append(b, token(owner)...)
	b = append(b, '.')
	return append(b, token(source)...)
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
