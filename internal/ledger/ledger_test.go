package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/poll"

	"github.com/shoal-dev/shoal/internal/meter"
)

func startBus(t *testing.T, dir, listen string) *bus.Bus {
	t.Helper()
	b, err := bus.Start(context.Background(), bus.Config{DataDir: dir, Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureStream(context.Background(), b.JetStream(), 0, 1); err != nil {
		t.Fatal(err)
	}
	return b
}

func startBusB(b *testing.B) *bus.Bus {
	bs, err := bus.Start(context.Background(), bus.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if err := EnsureStream(context.Background(), bs.JetStream(), 0, 1); err != nil {
		b.Fatal(err)
	}
	return bs
}

func inv(i int, at time.Time) *meter.Event {
	return &meter.Event{ID: "inv-" + strconv.Itoa(i), Kind: meter.KindInvocation, Start: at, End: at.Add(time.Millisecond),
		Function: "fn", Version: "1", Compute: meter.OnDemand, MemoryMB: 128, DurationMs: 0.7, BilledMs: 1, Outcome: meter.OutcomeSuccess}
}

// count reads the stream without Read's deduplication.
func count(t *testing.T, js jetstream.JetStream, q Query) map[string]int {
	t.Helper()
	got := map[string]int{}
	gaps, err := Scan(context.Background(), js, q, func(ev *meter.Event) error { got[ev.ID]++; return nil })
	if err != nil || len(gaps) > 0 {
		t.Fatal(err, gaps)
	}
	return got
}

func TestRecordAndRead(t *testing.T) {
	b := startBus(t, t.TempDir(), "")
	defer b.Close()
	js := b.JetStream()
	dir := t.TempDir()
	r, err := NewRecorder(Config{Dir: dir, SegmentBytes: 4096}, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i := range 200 {
		r.Record(inv(i, t0.Add(time.Duration(i)*time.Second)))
	}
	other := inv(1000, t0)
	other.Function = "other"
	r.Record(other)
	seg := &meter.Event{ID: "inst-a-1", Kind: meter.KindInstance, Start: t0, End: t0.Add(time.Minute), CapacityProvider: "cp1",
		Instance: "a", InstanceType: "m7i.large", Zone: "us-east-1a", State: meter.InstanceRunning}
	r.Record(seg)
	poll.Until(t, 10*time.Second, func() error {
		if n := r.Published(); n != 202 {
			return fmt.Errorf("published %d of 202", n)
		}
		return nil
	})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if segs, _ := segments(dir); len(segs) != 0 {
		t.Errorf("journal segments left after a clean close: %v", segs)
	}

	ctx := context.Background()
	all, gaps, err := Read(ctx, js, Query{})
	if err != nil || len(gaps) > 0 {
		t.Fatal(err, gaps)
	}
	if len(all) != 202 {
		t.Fatalf("read %d events, want 202", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].End.Before(all[i-1].End) {
			t.Fatalf("events out of order at %d", i)
		}
	}
	// A period and a function.
	got, _, err := Read(ctx, js, Query{Since: t0.Add(10 * time.Second), Until: t0.Add(20 * time.Second), Function: "fn"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 || got[0].ID != "inv-10" || got[9].ID != "inv-19" {
		t.Errorf("period read: %d events %v…", len(got), got[:min(1, len(got))])
	}
	got, _, err = Read(ctx, js, Query{Function: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "inv-1000" && got[1].ID != "inv-1000" {
		t.Errorf("function read: %+v", got)
	}
}

// A journal left by a killed process, including a damaged last line, is
// published by Drain; a range the dead process published but had not marked
// done is published again under the same ids and stored once.
func TestDrainDeadJournal(t *testing.T) {
	b := startBus(t, t.TempDir(), "")
	defer b.Close()
	js := b.JetStream()
	dir := t.TempDir()
	w, err := openWriter(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := range 50 {
		ev := inv(i, t0)
		if err := w.append(encodeLine(nil, ev.ID, Subject(ev, ""), mustJSON(t, ev))); err != nil {
			t.Fatal(err)
		}
	}
	// A damaged file must not stop a drain.
	if err := w.append([]byte("inv-torn\tshoal.usage.invocation.fn\t{\"id\":")); err != nil {
		t.Fatal(err)
	}
	seg := w.current()
	_ = w.close()
	journal, err := os.ReadFile(filepath.Join(dir, segName(seg)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Drain(context.Background(), js, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != 50 {
		t.Errorf("drained %d events, want 50", n)
	}
	if segs, _ := segments(dir); len(segs) != 0 {
		t.Errorf("segments left: %v", segs)
	}
	// The same journal again, as a process that died after the ledger
	// stored the range and before it marked it done would leave it.
	if err := os.WriteFile(filepath.Join(dir, segName(seg)), journal, 0o644); err != nil {
		t.Fatal(err)
	}
	var pos [16]byte
	binary.LittleEndian.PutUint64(pos[8:], uint64(len(journal)))
	if err := os.WriteFile(filepath.Join(dir, posName(seg)), pos[:], 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := Drain(context.Background(), js, dir); err != nil || n != 50 {
		t.Fatalf("second drain: %d, %v", n, err)
	}
	got := count(t, js, Query{})
	if len(got) != 50 {
		t.Errorf("%d distinct events stored, want 50", len(got))
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("event %s stored %d times", id, c)
		}
	}
}

// A Recorder whose ledger goes away keeps its events and sends them, once
// each, when the ledger is back.
func TestRecorderSurvivesLedgerOutage(t *testing.T) {
	natsDir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := startBus(t, natsDir, addr)
	nc, js, err := bus.Connect(b.ClientURL(), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r, err := NewRecorder(Config{Dir: t.TempDir(), Linger: time.Millisecond}, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for i := range 100 {
		r.Record(inv(i, t0))
	}
	poll.Until(t, 10*time.Second, func() error {
		if n := r.Published(); n != 100 {
			return fmt.Errorf("published %d", n)
		}
		return nil
	})
	b.Close()
	for i := 100; i < 300; i++ {
		r.Record(inv(i, t0))
	}
	// Let the publisher try the dead ledger and fail.
	retries := r.PublishFailures()
	poll.Until(t, 20*time.Second, func() error {
		if r.PublishFailures() == retries {
			return errors.New("no failed round of publishing while the ledger is down")
		}
		return nil
	})
	if n := r.Published(); n != 100 {
		t.Errorf("published %d while the ledger was down", n)
	}
	b = startBus(t, natsDir, addr)
	defer b.Close()
	poll.Until(t, 20*time.Second, func() error {
		if n := r.Published(); n < 300 {
			return fmt.Errorf("published %d of 300 after the ledger came back", n)
		}
		return nil
	})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := count(t, b.JetStream(), Query{})
	if len(got) != 300 {
		t.Errorf("%d distinct events stored, want 300", len(got))
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("event %s stored %d times", id, c)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, {Dir: "x", SegmentBytes: 10}, {Dir: "x", Batch: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	c := Config{Dir: "x"}
	if err := c.Validate(); err != nil || c.Batch == 0 || c.Linger == 0 || c.SegmentBytes == 0 {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	if Subject(&meter.Event{Kind: meter.KindInvocation, Function: "a.b c"}, "i-1") != "shoal.usage.invocation.a_b_c.i-1" {
		t.Error("subject tokens not sanitised")
	}
}

func mustJSON(t *testing.T, ev *meter.Event) []byte {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestScansLeaveNoConsumers: a reader polling the ledger (as a test or a
// dashboard does) leaves no consumer behind after each read.
func TestScansLeaveNoConsumers(t *testing.T) {
	b := startBus(t, t.TempDir(), "")
	defer b.Close()
	js := b.JetStream()
	r, err := NewRecorder(Config{Dir: t.TempDir()}, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i := range 10 {
		r.Record(inv(i, t0.Add(time.Duration(i)*time.Second)))
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 300 {
		q := Query{}
		if i%2 == 1 {
			q = Query{Since: t0, Function: "fn"}
		}
		evs, _, err := Read(ctx, js, q)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if len(evs) != 10 {
			t.Fatalf("read %d: %d events, want 10", i, len(evs))
		}
	}
	stream, err := js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Consumers; n != 0 {
		t.Errorf("%d consumers left on the ledger after 300 reads", n)
	}
}

// FuzzDecodeUsage: an answer of GET /shoal/v1/usage never panics the
// reader, which returns either an error or what it read.
func FuzzDecodeUsage(f *testing.F) {
	f.Add(`{"id":"a","kind":"invocation","start":"2026-11-26T10:00:00Z","end":"2026-11-26T10:00:01Z","billed_ms":1000}` + "\n")
	f.Add(`{"id":"a"}{"id":"b"}`)
	f.Add(`{"id":`)
	f.Add(`{"problem":"messages 3-4 were deleted from the ledger","first_seq":3,"last_seq":4}` + "\n")
	f.Add(`{"problem":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		events, gaps, err := DecodeUsage(strings.NewReader(s))
		if err != nil && (events != nil || gaps != nil) {
			t.Errorf("events %v and gaps %v beside error %v", events, gaps, err)
		}
	})
}

// A read through Handler finds every event its process recorded before the
// request, across segment rotations, without waiting for the publisher's
// linger: Sync waits for them. A linger of an hour makes a read that does not
// wait find nothing.
func TestHandlerReadsItsOwnWrites(t *testing.T) {
	b := startBus(t, t.TempDir(), "")
	defer b.Close()
	js := b.JetStream()
	r, err := NewRecorder(Config{Dir: t.TempDir(), SegmentBytes: 4096, Linger: time.Hour}, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	// The first event starts the publisher's hour-long linger.
	r.Record(inv(0, t0))
	srv := httptest.NewServer(Handler(js, r))
	defer srv.Close()
	for round := 1; round <= 3; round++ {
		n := round * 50
		for i := n - 49; i <= n; i++ {
			r.Record(inv(i, t0.Add(time.Duration(i)*time.Second)))
		}
		resp, err := http.Get(srv.URL + "?since=" + t0.Format(time.RFC3339))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Count(body, []byte("\n")); got != n+1 {
			t.Fatalf("round %d: read %d events, want %d", round, got, n+1)
		}
	}
	// Without the recorder the handler reads what is published: nothing new.
	r.Record(inv(1000, t0))
	resp, err := http.Get(httptest.NewServer(Handler(js, nil)).URL + "?since=" + t0.Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(body, []byte(`"inv-1000"`)) {
		t.Errorf("an event still in its linger was read without Sync; the test proves nothing")
	}
}
