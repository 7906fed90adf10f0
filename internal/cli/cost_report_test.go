package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/meter"
)

// usageServer serves events as GET /shoal/v1/usage does, and remembers the
// queries it was asked.
type usageServer struct {
	*httptest.Server
	mu      sync.Mutex
	queries []string
	// fleet is what GET /shoal/v1/fleet answers; none (404) when empty.
	fleet        string
	fleetQueries []string
}

func newUsageServer(t *testing.T, events []meter.Event) *usageServer {
	s := &usageServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /shoal/v1/usage", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.queries = append(s.queries, r.URL.RawQuery)
		s.mu.Unlock()
		since, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("since"))
		if err != nil {
			http.Error(w, "since: not an RFC 3339 time", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for i := range events {
			if !events[i].End.Before(since) {
				_ = enc.Encode(&events[i])
			}
		}
	})
	mux.HandleFunc("GET /shoal/v1/fleet", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fleetQueries = append(s.fleetQueries, r.URL.RawQuery)
		if s.fleet == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(s.fleet))
	})
	mux.HandleFunc("GET /2015-03-31/functions/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Functions":[{"FunctionName":"f","Runtime":"python3.13"}]}`))
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestCostReportJSON(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var events []meter.Event
	for i := range 10 {
		start := t0.Add(time.Duration(i) * time.Minute)
		events = append(events, meter.Event{
			ID: "inv-" + string(rune('a'+i)), Kind: meter.KindInvocation, Start: start, End: start.Add(100 * time.Millisecond),
			Function: "f", Version: "$LATEST", Compute: meter.OnDemand, Architecture: "x86_64", MemoryMB: 1024,
			DurationMs: 100, BilledMs: 100, CPUMs: 5,
		})
	}
	// Before the period, and an instance segment that runs past its end.
	events = append(events, meter.Event{ID: "old", Kind: meter.KindInvocation, Start: t0.Add(-time.Hour), End: t0.Add(-time.Hour + time.Second),
		Function: "f", Compute: meter.OnDemand, MemoryMB: 1024, DurationMs: 1000, BilledMs: 1000})
	events = append(events, meter.Event{ID: "seg", Kind: meter.KindInstance, Start: t0.Add(30 * time.Minute), End: t0.Add(2 * time.Hour),
		CapacityProvider: "cp", Instance: "i-1", InstanceType: "m7i.large", State: meter.InstanceRunning})
	srv := newUsageServer(t, events)

	out, errOut, code := runShoal(t, "cost", "report", "--endpoint-url", srv.URL, "-o", "json",
		"--since", t0.Format(time.RFC3339), "--until", t0.Add(time.Hour).Format(time.RFC3339))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc billing.JSONReport
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	// 10 requests of 0.1 GB-s, and half an hour of an m7i.large with its fee.
	want := decimal.RequireFromString("0.000002").
		Add(decimal.RequireFromString("1").Mul(decimal.RequireFromString("0.0000166667"))).
		Add(decimal.RequireFromString("0.5").Mul(decimal.RequireFromString("0.1008")).Mul(decimal.RequireFromString("1.15")))
	if doc.Total.Exact != want.String() || doc.Total.USD != "0.06" {
		t.Errorf("total %+v, want %s", doc.Total, want)
	}
	if doc.Events["invocation"] != 10 || len(doc.CapacityProviders) != 1 {
		t.Errorf("events %v, %d capacity providers", doc.Events, len(doc.CapacityProviders))
	}
	if w := doc.Functions[0].WhatIf; w == nil || !strings.Contains(strings.Join(w.Assumptions, " "), "python: 16 per vCPU") {
		t.Errorf("the what-if does not size Managed Instances for f's runtime, python3.13: %+v", w)
	}
	if len(srv.queries) != 1 || strings.Contains(srv.queries[0], "until") || strings.Contains(srv.queries[0], "function") {
		t.Errorf("queries %q: want since only", srv.queries)
	}
}

func TestCostReportTableAndHTML(t *testing.T) {
	now := time.Now()
	srv := newUsageServer(t, []meter.Event{{
		ID: "inv-1", Kind: meter.KindInvocation, Start: now.Add(-10 * time.Minute), End: now.Add(-10*time.Minute + 20*time.Millisecond),
		Function: "hello", Version: "$LATEST", Compute: meter.OnDemand, Architecture: "x86_64", MemoryMB: 128,
		DurationMs: 20, BilledMs: 20,
	}})
	out, errOut, code := runShoal(t, "cost", "report", "--endpoint-url", srv.URL, "--since", "1h")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, s := range []string{"hello", "on-demand", "Stay on on-demand", "(agree)", "assumptions:"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
	out, errOut, code = runShoal(t, "cost", "report", "--endpoint-url", srv.URL, "--since", "1h", "-o", "html", "--no-what-if")
	if code != 0 || !strings.HasPrefix(out, "<!DOCTYPE html>") {
		t.Fatalf("exit %d: %s\n%.200s", code, errOut, out)
	}
}

func TestCostReportFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad since", []string{"--since", "yesterday"}, "--since"},
		{"backwards", []string{"--since", "1h", "--until", "2h"}, "is not before"},
		{"bad output", []string{"-o", "yaml"}, "--output"},
		{"bad step", []string{"--step", "1500ms"}, "whole seconds"},
		{"bad runtime", []string{"--runtime", "cobol"}, "--runtime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"cost", "report", "--endpoint-url", "http://127.0.0.1:1"}, tt.args...)
			_, errOut, code := runShoal(t, args...)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q: want an error naming %q", code, errOut, tt.want)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"now", now},
		{"1h", now.Add(-time.Hour)},
		{"90s", now.Add(-90 * time.Second)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"2026-11-26T09:30:00Z", time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)},
		{"2026-11-26T09:30:00.5+01:00", time.Date(2026, 11, 26, 8, 30, 0, 5e8, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseWhen(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"-1h", "soon", "1x"} {
		if _, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q): no error", bad)
		}
	}
}

func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"now", "1h", "7d", "90s", "2026-11-26T09:30:00Z", "-1h", "d", "99999999999d", "107000d"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseWhen(s, now)
		if err == nil && got.After(now) && !strings.Contains(s, "T") {
			t.Errorf("parseWhen(%q) = %v: a duration ago is after now", s, got)
		}
	})
}

// TestCostReportShowsLedgerGaps: messages the ledger lost or cannot read are
// in the report's warnings (JSON and table), not silently left out of the
// bill. The usage comes from a real ledger stream through its handler.
func TestCostReportShowsLedgerGaps(t *testing.T) {
	ctx := context.Background()
	b, err := bus.Start(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	js := b.JetStream()
	if err := ledger.EnsureStream(ctx, js, 0, 1); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, body := range []string{
		fmt.Sprintf(`{"id":"inv-1","kind":"invocation","start":%q,"end":%q,"function":"f","compute":"on-demand","memory_mb":128,"duration_ms":20,"billed_ms":20}`,
			now.Add(-10*time.Minute).Format(time.RFC3339Nano), now.Add(-10*time.Minute+20*time.Millisecond).Format(time.RFC3339Nano)),
		`{"id":"inv-2","kind":"invoc`,
	} {
		if _, err := js.Publish(ctx, ledger.SubjectPrefix+"invocation.f.cp", []byte(body+"\n")); err != nil {
			t.Fatal(i, err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /shoal/v1/usage", ledger.Handler(js, nil))
	mux.HandleFunc("GET /2015-03-31/functions/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Functions":[{"FunctionName":"f","Runtime":"python3.13"}]}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	out, errOut, code := runShoal(t, "cost", "report", "--endpoint-url", srv.URL, "--since", "1h", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc billing.JSONReport
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if doc.Events["invocation"] != 1 || len(doc.Warnings) != 1 || !strings.Contains(doc.Warnings[0], "message 2") ||
		!strings.Contains(doc.Warnings[0], "not usage events") {
		t.Errorf("events %v, warnings %q", doc.Events, doc.Warnings)
	}
	out, errOut, code = runShoal(t, "cost", "report", "--endpoint-url", srv.URL, "--since", "1h")
	if code != 0 || !strings.Contains(out, "the usage ledger is incomplete") {
		t.Errorf("exit %d: %s\n%s", code, errOut, out)
	}
}

// TestCostReportFleetCheck: shoal cost report reads the fleet's record of
// its instances, running and terminated since the period began, and holds
// the ledger's instance time against it: it agrees when the ledger is whole
// and differs, naming the missing seconds, when the ledger lost a segment.
func TestCostReportFleetCheck(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	seg := func(id, inst, state string, from, to time.Duration) meter.Event {
		return meter.Event{ID: id, Kind: meter.KindInstance, Start: t0.Add(from), End: t0.Add(to),
			CapacityProvider: "cp", Instance: inst, InstanceType: "m7i.large", Zone: "us-east-1a", State: state}
	}
	whole := []meter.Event{
		seg("a0", "i-a", meter.InstancePending, -2*time.Minute, -time.Minute),
		seg("a1", "i-a", meter.InstanceRunning, -time.Minute, 20*time.Minute),
		seg("a2", "i-a", meter.InstanceRunning, 20*time.Minute, 25*time.Minute+500*time.Millisecond),
		seg("a3", "i-a", meter.InstanceDraining, 25*time.Minute+500*time.Millisecond, 26*time.Minute),
		seg("b0", "i-b", meter.InstancePending, 10*time.Minute, 11*time.Minute),
		seg("b1", "i-b", meter.InstanceRunning, 11*time.Minute, 30*time.Minute),
	}
	for i := range 5 {
		start := t0.Add(time.Duration(i+1) * time.Minute)
		whole = append(whole, meter.Event{ID: fmt.Sprintf("inv-%d", i), Kind: meter.KindInvocation, Start: start, End: start.Add(50 * time.Millisecond),
			Function: "f", Version: "1", Compute: meter.ManagedInstances, Architecture: "x86_64", MemoryMB: 2048,
			CapacityProvider: "cp", Instance: "i-a", InstanceType: "m7i.large", DurationMs: 50, CPUMs: 5})
	}
	// i-a was terminated in the period; i-b runs, metered up to 30 minutes.
	fleetDoc := fmt.Sprintf(`{"instances":[{"id":"i-b","capacity_provider":"cp","type":"m7i.large","zone":"us-east-1b","state":"running",
		"launched_at":%q,"started_at":%q,"metered_until":%q}],
		"terminated":[{"id":"i-a","capacity_provider":"cp","type":"m7i.large","zone":"us-east-1a","state":"terminated",
		"launched_at":%q,"started_at":%q,"terminated_at":%q}],"versions":[]}`,
		t0.Add(10*time.Minute).Format(time.RFC3339Nano), t0.Add(11*time.Minute).Format(time.RFC3339Nano), t0.Add(30*time.Minute).Format(time.RFC3339Nano),
		t0.Add(-2*time.Minute).Format(time.RFC3339Nano), t0.Add(-time.Minute).Format(time.RFC3339Nano), t0.Add(26*time.Minute).Format(time.RFC3339Nano))
	args := []string{"cost", "report", "-o", "json", "--since", t0.Format(time.RFC3339), "--until", t0.Add(time.Hour).Format(time.RFC3339)}
	report := func(t *testing.T, events []meter.Event, fleet string) (billing.JSONReport, string, *usageServer) {
		t.Helper()
		srv := newUsageServer(t, events)
		srv.fleet = fleet
		out, errOut, code := runShoal(t, append(args, "--endpoint-url", srv.URL)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var doc billing.JSONReport
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		return doc, errOut, srv
	}
	miCheck := func(doc billing.JSONReport) *billing.JSONCheck {
		for _, f := range doc.Functions {
			for i, c := range f.Checks {
				if c.Compute == "managed-instances" {
					return &f.Checks[i]
				}
			}
		}
		return nil
	}

	t.Run("whole", func(t *testing.T) {
		doc, _, srv := report(t, whole, fleetDoc)
		if want := "terminated_since=" + t0.Format(time.RFC3339); len(srv.fleetQueries) != 1 || !strings.Contains(srv.fleetQueries[0], strings.ReplaceAll(want, ":", "%3A")) {
			t.Errorf("fleet queries %q, want %s", srv.fleetQueries, want)
		}
		p := doc.CapacityProviders[0]
		if p.Fleet == nil || !p.Fleet.Agree || p.Fleet.Instances != 2 || p.Fleet.Usage[0].Seconds != "2700" {
			t.Errorf("fleet %+v, want 2 instances, 26 + 19 minutes, agreeing", p.Fleet)
		}
		if c := miCheck(doc); c == nil || !c.Agree {
			t.Errorf("managed-instances check %+v", c)
		}
	})
	t.Run("a segment missing", func(t *testing.T) {
		var lost []meter.Event
		for _, ev := range whole {
			if ev.ID != "a2" {
				lost = append(lost, ev)
			}
		}
		doc, _, _ := report(t, lost, fleetDoc)
		p := doc.CapacityProviders[0]
		if p.Fleet == nil || p.Fleet.Agree || p.Usage[0].Seconds != "2399.5" {
			t.Errorf("metered %+v, fleet %+v: want 300.5 s fewer in the ledger, differing", p.Usage, p.Fleet)
		}
		if c := miCheck(doc); c == nil || c.Agree {
			t.Errorf("managed-instances check %+v", c)
		}
		if !strings.Contains(strings.Join(doc.Warnings, "\n"), "the ledger holds 2399.5 s of billed instance time, the fleet's record of its instances 2700 s") {
			t.Errorf("warnings %q", doc.Warnings)
		}
	})
	t.Run("no fleet record", func(t *testing.T) {
		doc, errOut, _ := report(t, whole, "")
		if !strings.Contains(errOut, "could not be read") || doc.CapacityProviders[0].Fleet != nil || miCheck(doc) != nil {
			t.Errorf("stderr %q, fleet %+v, check %+v", errOut, doc.CapacityProviders[0].Fleet, miCheck(doc))
		}
	})
}
