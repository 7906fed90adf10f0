package ledger

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/poll"
)

// publishEvents stores one message per event, as a recorder would.
func publishEvents(t *testing.T, js jetstream.JetStream, evs ...*meter.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := js.Publish(context.Background(), Subject(ev, ""), append(mustJSON(t, ev), '\n')); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadReportsGaps: what the ledger cannot deliver — messages removed
// from its start, messages deleted in between, lines that are not events —
// is reported beside what it can, by Read and by GET /shoal/v1/usage, and
// only where it concerns the period read.
func TestReadReportsGaps(t *testing.T) {
	b := startBus(t, t.TempDir(), "")
	defer b.Close()
	js := b.JetStream()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour)
	publishEvents(t, js, inv(1, t0), inv(2, t0)) // messages 1 and 2
	if _, err := js.Publish(ctx, SubjectPrefix+"invocation.fn.cp", []byte("{\"id\":\"inv-3\",\"kind\":\"invoc\n")); err != nil {
		t.Fatal(err) // message 3: a line cut short
	}
	publishEvents(t, js, inv(4, t0), inv(5, t0), inv(6, t0)) // messages 4-6
	stream, err := js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, 5} { // 1 from the start, 5 in between
		if err := stream.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}

	events, gaps, err := Read(ctx, js, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Errorf("%d events, want inv-2, inv-4 and inv-6", len(events))
	}
	want := []struct {
		first, last uint64
		says        string
	}{{1, 1, "removed from the ledger"}, {5, 5, "deleted"}, {3, 3, "not usage events"}}
	if len(gaps) != len(want) {
		t.Fatalf("gaps %+v, want %d", gaps, len(want))
	}
	for _, w := range want {
		found := false
		for _, g := range gaps {
			found = found || g.FirstSeq == w.first && g.LastSeq == w.last && strings.Contains(g.Problem, w.says)
		}
		if !found {
			t.Errorf("no gap %d-%d saying %q in %+v", w.first, w.last, w.says, gaps)
		}
	}

	// A period that starts after everything was stored has no gaps.
	if _, gaps, err := Read(ctx, js, Query{Since: time.Now().Add(MaxLag + time.Hour)}); err != nil || len(gaps) != 0 {
		t.Errorf("a later period: gaps %+v, %v", gaps, err)
	}

	// GET /shoal/v1/usage ends with the gaps, which DecodeUsage reads apart.
	srv := httptest.NewServer(Handler(js, nil))
	defer srv.Close()
	for _, raw := range []string{"", "&raw=true"} {
		resp, err := http.Get(srv.URL + "/shoal/v1/usage?since=" + t0.Add(-time.Minute).UTC().Format(time.RFC3339) + raw)
		if err != nil {
			t.Fatal(err)
		}
		evs, gs, err := DecodeUsage(resp.Body)
		resp.Body.Close()
		if err != nil || len(evs) != 3 || len(gs) != 3 {
			t.Errorf("usage%s: %d events, gaps %+v, %v", raw, len(evs), gs, err)
		}
	}
}

// TestRetention: the usage stream keeps messages for its retention, which
// EnsureStream sets on a stream that exists; a period reaching back past what
// retention removed is reported, not silently short.
func TestRetention(t *testing.T) {
	b := startBus(t, t.TempDir(), "")
	defer b.Close()
	js := b.JetStream()
	ctx := context.Background()
	if err := EnsureStream(ctx, js, 2*time.Second, 1); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := stream.Info(ctx); err != nil || info.Config.MaxAge != 2*time.Second {
		t.Fatalf("retention %v, %v", info.Config.MaxAge, err)
	}
	t0 := time.Now()
	publishEvents(t, js, inv(1, t0), inv(2, t0))
	poll.Until(t, 30*time.Second, func() error {
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return fmt.Errorf("%d messages kept", info.State.Msgs)
		}
		return nil
	})
	events, gaps, err := Read(ctx, js, Query{Since: t0.Add(-time.Minute)})
	if err != nil || len(events) != 0 || len(gaps) != 1 || gaps[0].LastSeq != 2 || !strings.Contains(gaps[0].Problem, "removed") {
		t.Fatalf("after retention: %d events, gaps %+v, %v", len(events), gaps, err)
	}
	publishEvents(t, js, inv(3, time.Now()))
	_, gaps, err = Read(ctx, js, Query{Since: t0.Add(-time.Minute)})
	if err != nil || len(gaps) != 1 || gaps[0].Before.IsZero() {
		t.Fatalf("a period reaching back before the oldest message: gaps %+v, %v", gaps, err)
	}
	if err := EnsureStream(ctx, js, 0, 1); err != nil {
		t.Fatal(err)
	}
	if info, err := stream.Info(ctx); err != nil || info.Config.MaxAge != 0 {
		t.Fatalf("retention after setting none: %v, %v", info.Config.MaxAge, err)
	}
}
