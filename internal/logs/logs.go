// Package logs keeps every execution environment's log lines (the function's
// stdout and stderr with Lambda's START, END and REPORT lines) in a JetStream
// stream, one subject per function, and reads them back for `shoal fn logs`.
// Writing never blocks the invoke path: lines go through a bounded buffer and are
// published in the background; when the buffer is full, lines are dropped and counted.
package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/guard"
)

// StreamName is the JetStream stream that holds the logs.
const StreamName = "SHOAL_LOGS"

const subjectPrefix = "logs."

// Config configures a Store.
type Config struct {
	// MaxAge is how long lines are kept (default 7 days).
	MaxAge time.Duration
	// MaxBytes bounds the stream's size (default 1 GiB).
	MaxBytes int64
	// Buffer is how many lines may wait to be published (default 16384).
	Buffer int
	// Source names who writes (an agent's instance id; "" is the control
	// plane, "cp"): the last token of every subject the store publishes to,
	// logs.<function>.<source>, so that the bus can hold each source to its
	// own.
	Source string
	// Attach looks the stream up instead of creating it: a source that may
	// write lines but not change where they are kept (an agent).
	Attach bool
	// Replicas of the stream (1 on one machine, 3 in a cluster).
	Replicas int
}

// Validate fills defaults.
func (c *Config) Validate() error {
	if c.MaxAge == 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 1 << 30
	}
	if c.Buffer == 0 {
		c.Buffer = 16384
	}
	if c.Source == "" {
		c.Source = "cp"
	}
	if c.MaxAge < 0 || c.MaxBytes < 0 || c.Buffer < 0 {
		return errors.New("logs: negative limit")
	}
	return nil
}

// Record is one stored log line.
type Record struct {
	Time     time.Time `json:"time"`
	Function string    `json:"function"`
	Version  string    `json:"version"`
	Stream   string    `json:"stream"`
	Message  string    `json:"message"`
}

// Store writes and reads log lines.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	logger *slog.Logger

	source  string // the last token of the subjects this store publishes to
	queue   chan Record
	dropped atomic.Int64
	done    chan struct{}
	closeMu sync.Once
}

// Open creates the stream if needed and starts the publisher.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var st jetstream.Stream
	var err error
	if cfg.Attach {
		st, err = js.Stream(ctx, StreamName)
	} else {
		st, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:      StreamName,
			Subjects:  []string{subjectPrefix + ">"},
			Storage:   jetstream.FileStorage,
			MaxAge:    cfg.MaxAge,
			MaxBytes:  cfg.MaxBytes,
			Discard:   jetstream.DiscardOld,
			Retention: jetstream.LimitsPolicy,
			Replicas:  max(1, cfg.Replicas),
		})
	}
	if err != nil {
		return nil, fmt.Errorf("logs: stream %s: %w", StreamName, err)
	}
	s := &Store{
		js: js, stream: st, source: "." + cfg.Source,
		logger: logger.With("component", "logs"),
		queue:  make(chan Record, cfg.Buffer),
		done:   make(chan struct{}),
	}
	go s.publish()
	return s, nil
}

// WriteLog queues one line; it never blocks.
func (s *Store) WriteLog(rec Record) {
	select {
	case s.queue <- rec:
	default:
		s.dropped.Add(1)
	}
}

// Dropped reports how many lines were dropped because the buffer was full.
func (s *Store) Dropped() int64 { return s.dropped.Load() }

// publish sends queued lines in batches: one JetStream message carries the lines
// (newline-delimited JSON) of one function that arrived within batchLinger, so the
// three lines every invocation writes cost one message or less.
func (s *Store) publish() {
	defer close(s.done)
	batches := make(map[string][]byte) // by function
	flush := func() {
		defer guard.Recover(s.logger, "storing log lines", nil)
		for fn, body := range batches {
			if _, err := s.js.PublishAsync(subjectPrefix+fn+s.source, body); err != nil {
				s.logger.Warn("log lines not stored", "function", fn, "err", err)
			}
			delete(batches, fn)
		}
	}
	add := func(rec Record) {
		line, err := json.Marshal(rec)
		if err != nil {
			return
		}
		b := append(batches[rec.Function], line...)
		batches[rec.Function] = append(b, '\n')
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	open := true
	for open {
		rec, ok := <-s.queue
		if !ok {
			break
		}
		add(rec)
		// Let the lines of the next batchLinger gather in the buffer rather
		// than waking for each of them: one wake-up per batch, not per line.
		timer.Reset(batchLinger)
		<-timer.C
		n := 1
	collect:
		for {
			select {
			case rec, ok := <-s.queue:
				if !ok {
					open = false
					break collect
				}
				add(rec)
				if n++; n == batchMax {
					flush()
					n = 0
				}
			default:
				break collect
			}
		}
		flush()
	}
	flush()
	select {
	case <-s.js.PublishAsyncComplete():
	case <-time.After(5 * time.Second):
	}
}

// batchLinger is how long a line may wait for others to share its message;
// batchMax bounds the lines of one message.
const (
	batchLinger = 20 * time.Millisecond
	batchMax    = 512
)

// Close flushes queued lines and stops the publisher. WriteLog must not be called
// after Close.
func (s *Store) Close() {
	s.closeMu.Do(func() { close(s.queue) })
	<-s.done
}

// Query selects lines to read.
type Query struct {
	Function string
	// Since is the earliest time of a line; zero reads from the beginning.
	Since time.Time
	// Follow keeps reading new lines until the context ends.
	Follow bool
}

// Read calls yield for each stored line of q.Function in order. Without Follow it
// returns after the last line stored when it began.
func (s *Store) Read(ctx context.Context, q Query, yield func(Record) error) error {
	if q.Function == "" {
		return errors.New("logs: no function named")
	}
	// Lines stored before subjects named their source end at the function.
	subject := subjectPrefix + q.Function
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject, subject + ".>"}}
	if !q.Since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		since := q.Since
		cfg.OptStartTime = &since
	}
	// The last sequence of the subject now is where a non-following read stops.
	var last uint64
	if !q.Follow {
		for _, subj := range cfg.FilterSubjects {
			msg, err := s.stream.GetLastMsgForSubject(ctx, subj)
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
			case err != nil:
				return fmt.Errorf("logs: %w", err)
			default:
				last = max(last, msg.Sequence)
			}
		}
		if last == 0 {
			return nil
		}
	}
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	for {
		msgs, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("logs: %w", err)
		}
		for m := range msgs.Messages() {
			for line := range bytes.SplitSeq(m.Data(), []byte{'\n'}) {
				var rec Record
				if len(line) == 0 || json.Unmarshal(line, &rec) != nil {
					continue
				}
				if rec.Time.Before(q.Since) {
					continue
				}
				if err := yield(rec); err != nil {
					return err
				}
			}
			if md, err := m.Metadata(); err == nil && !q.Follow && md.Sequence.Stream >= last {
				return nil
			}
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			return fmt.Errorf("logs: %w", err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
