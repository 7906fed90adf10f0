package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/poll"
)

// The recordings are two reads of GET /shoal/v1/fleet from a running shoal,
// about a second apart, while two Managed Instances functions took load:
// echo:1 (8 slots per environment) and resize:1 (1 slot, throttled while the
// fleet scaled out).
const (
	topRecording1 = "testdata/top-fleet-1.json"
	topRecording2 = "testdata/top-fleet-2.json"
)

func topLoadFleet(t *testing.T, path string) fleetDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc fleetDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// topSquash collapses each run of spaces of a rendered line, so tests need not
// know the tables' column widths.
func topSquash(text string) []string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

var topT0 = time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)

func TestRenderTop(t *testing.T) {
	rec1, rec2 := topLoadFleet(t, topRecording1), topLoadFleet(t, topRecording2)
	at := func(d time.Duration, doc fleetDoc) *fleetSample { return &fleetSample{At: topT0.Add(d), Doc: doc} }
	busy := fleetDoc{
		Instances: []fleetInstance{
			{ID: "i-b", CapacityProvider: "cp", Type: "c7i.xlarge", Zone: "z1", State: "running", VCPU: 4, MemoryMB: 8192,
				CPUUtilization: 0.42, MemoryUtilization: 0.25, Environments: []fleetEnv{
					{ID: "e-2", Function: "fn", Version: "2", Slots: 16, InFlight: 5, State: "ready", CPUUtilization: 0.9},
					{ID: "e-1", Function: "fn", Version: "1", Slots: 16, InFlight: 16, State: "draining", CPUUtilization: 0.125},
				}},
			{ID: "i-a", CapacityProvider: "cp", Type: "c7i.large", Zone: "z1", State: "running", VCPU: 2, MemoryMB: 512,
				MemoryUtilization: 0.5},
		},
		Versions: []versionCounts{
			{Version: "fn:2", Environments: 1, Invocations: 500, ThrottlesCPU: 40, ThrottlesMemory: 4},
			{Version: "fn:1", Environments: 1, Invocations: 1000, ThrottlesConcurrency: 10},
		},
	}
	// busy one and a half seconds later: fn:1 ran 300 more and was throttled 6
	// more times for concurrency; fn:2 ran 150 more, 3 CPU and 0 memory throttles.
	busyLater := fleetDoc{Instances: busy.Instances, Versions: []versionCounts{
		{Version: "fn:1", Environments: 1, Invocations: 1300, ThrottlesConcurrency: 16},
		{Version: "fn:2", Environments: 1, Invocations: 650, ThrottlesCPU: 43, ThrottlesMemory: 4},
	}}
	tests := []struct {
		name  string
		frame topFrame
		// want are lines of the frame, in order (others may come between).
		want []string
		// absent are substrings the frame must not have.
		absent []string
	}{
		{
			name:  "first read has no rates",
			frame: topFrame{Cur: at(0, rec2)},
			want: []string{
				"shoal top 04:00:00 http://shoal.test every 1s",
				"instances 21 environments 9 in flight 2/44 invocations/s - throttles/s concurrency - cpu - memory -",
				"INSTANCE CAPACITY PROVIDER TYPE ZONE STATE CPU MEMORY ENVS IN FLIGHT",
				"i-079cc0506705bd1c9 web m7i.large us-east-1a running 0% 6 MiB/8.0 GiB 0 0/0",
				"i-1d99d8417612c57e8 web m7i.large us-east-1a lost (the agent process exited: exit status 1) 0% 0 MiB/8.0 GiB 0 0/0",
				"i-d360674a47c0d91c4 web m7i.large us-east-1a running 0% 60 MiB/8.0 GiB 2 2/2",
				"i-f11795a6d568559e6 web m7i.large us-east-1b running 0% 6 MiB/8.0 GiB 1 0/1",
				"i-0a820eeb64858dd87 web m7i.large us-east-1c lost (no heartbeat for 6.52s) 0% 6 MiB/8.0 GiB 0 0/0",
				"i-ba770cf6c80a684f1 web m7i.large us-east-1c running 0% 30 MiB/8.0 GiB 2 0/9",
				"INSTANCE FUNCTION ENVIRONMENT STATE SLOTS CPU",
				"i-d360674a47c0d91c4 resize:1 e-5a617f1c70a5fb4c ready 1/1 0%",
				"i-f11795a6d568559e6 resize:1 e-b701ca724cb8b557 initializing 0/1 0%",
				"i-ba770cf6c80a684f1 echo:1 e-731aa1665488934d ready 0/8 0%",
				"i-ba770cf6c80a684f1 resize:1 e-5db73f6642bed2c3 ready 0/1 0%",
				"FUNCTION ENVS INVOCATIONS INVOCATIONS/S THROTTLES CONCURRENCY/CPU/MEMORY THROTTLES/S",
				"echo:1 5 461 - 0 / 0 / 0 - / - / -",
				"resize:1 3 12 - 27 / 0 / 0 - / - / -",
			},
			absent: []string{"unreachable"},
		},
		{
			name:  "rates from two recorded reads a second apart",
			frame: topFrame{Prev: at(0, rec1), Cur: at(time.Second, rec2)},
			want: []string{
				"shoal top 04:00:01 http://shoal.test every 1s",
				"instances 21 environments 9 in flight 2/44 invocations/s 22.0 throttles/s concurrency 15.0 cpu 0.0 memory 0.0",
				"echo:1 5 461 13.0 0 / 0 / 0 0.0 / 0.0 / 0.0",
				"resize:1 3 12 9.0 27 / 0 / 0 15.0 / 0.0 / 0.0",
			},
		},
		{
			name:  "rates from two recorded reads four seconds apart",
			frame: topFrame{Prev: at(0, rec1), Cur: at(4*time.Second, rec2)},
			want: []string{
				"instances 21 environments 9 in flight 2/44 invocations/s 5.5 throttles/s concurrency 3.8 cpu 0.0 memory 0.0",
				"echo:1 5 461 3.2 0 / 0 / 0 0.0 / 0.0 / 0.0",
				"resize:1 3 12 2.2 27 / 0 / 0 3.8 / 0.0 / 0.0",
			},
		},
		{
			name:  "counters that went down (a restarted control plane) give no rate",
			frame: topFrame{Prev: at(0, rec2), Cur: at(time.Second, rec1)},
			want: []string{
				"instances 11 environments 8 in flight 7/43 invocations/s - throttles/s concurrency - cpu - memory -",
				"echo:1 5 448 - 0 / 0 / 0 - / - / -",
				"resize:1 3 3 - 12 / 0 / 0 - / - / -",
			},
		},
		{
			name:  "every cause, sorted instances, environments and versions",
			frame: topFrame{Prev: at(0, busy), Cur: at(1500*time.Millisecond, busyLater)},
			want: []string{
				"instances 2 environments 2 in flight 21/32 invocations/s 300.0 throttles/s concurrency 4.0 cpu 2.0 memory 0.0",
				"i-a cp c7i.large z1 running 0% 256 MiB/512 MiB 0 0/0",
				"i-b cp c7i.xlarge z1 running 42% 2.0 GiB/8.0 GiB 2 21/32",
				"i-b fn:1 e-1 draining 16/16 12%",
				"i-b fn:2 e-2 ready 5/16 90%",
				"fn:1 1 1300 200.0 16 / 0 / 0 4.0 / 0.0 / 0.0",
				"fn:2 1 650 100.0 0 / 43 / 4 0.0 / 2.0 / 0.0",
			},
		},
		{
			name: "a version new since the previous read has no rate yet",
			frame: topFrame{Prev: at(0, fleetDoc{Instances: busy.Instances, Versions: busy.Versions[1:]}),
				Cur: at(time.Second, busyLater)},
			want: []string{
				"instances 2 environments 2 in flight 21/32 invocations/s 300.0 throttles/s concurrency 6.0 cpu 0.0 memory 0.0",
				"fn:1 1 1300 300.0 16 / 0 / 0 6.0 / 0.0 / 0.0",
				"fn:2 1 650 - 0 / 43 / 4 - / - / -",
			},
		},
		{
			name:  "unreachable keeps the last fleet",
			frame: topFrame{Prev: at(0, rec1), Cur: at(time.Second, rec2), Err: errors.New("connection refused"), Now: topT0.Add(5 * time.Second)},
			want: []string{
				"shoal top 04:00:05 http://shoal.test every 1s",
				"unreachable: connection refused (showing the fleet as of 04:00:01)",
				"instances 21 environments 9 in flight 2/44 invocations/s 22.0 throttles/s concurrency 15.0 cpu 0.0 memory 0.0",
				"resize:1 3 12 9.0 27 / 0 / 0 15.0 / 0.0 / 0.0",
			},
		},
		{
			name:   "unreachable from the start",
			frame:  topFrame{Err: errors.New("connection refused")},
			want:   []string{"shoal top 04:00:00 http://shoal.test every 1s", "unreachable: connection refused"},
			absent: []string{"INSTANCE", "instances", "FUNCTION"},
		},
		{
			name:   "no instances",
			frame:  topFrame{Cur: at(0, fleetDoc{})},
			want:   []string{"instances 0 environments 0 in flight 0/0 invocations/s - throttles/s concurrency - cpu - memory -", "no instances"},
			absent: []string{"INSTANCE", "FUNCTION"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.frame
			f.Endpoint, f.Interval = "http://shoal.test", time.Second
			if f.Now.IsZero() {
				f.Now = topT0
				if f.Cur != nil {
					f.Now = f.Cur.At
				}
			}
			var b bytes.Buffer
			renderTop(&b, f)
			lines := topSquash(b.String())
			i := 0
			for _, l := range lines {
				if i < len(tt.want) && l == tt.want[i] {
					i++
				}
			}
			if i < len(tt.want) {
				t.Errorf("missing (or out of order) line %q in\n%s", tt.want[i], b.String())
			}
			for _, s := range tt.absent {
				if strings.Contains(b.String(), s) {
					t.Errorf("frame has %q:\n%s", s, b.String())
				}
			}
		})
	}
}

// TestRenderTopOrder checks the tables' order on the recording, whose
// instances and environments come unsorted: instances by capacity provider,
// zone and id; environments by instance in the same order, then function,
// version and id.
func TestRenderTopOrder(t *testing.T) {
	doc := topLoadFleet(t, topRecording2)
	var b bytes.Buffer
	renderTop(&b, topFrame{Endpoint: "http://shoal.test", Interval: time.Second, Now: topT0, Cur: &fleetSample{At: topT0, Doc: doc}})
	zone := map[string]string{}
	for _, in := range doc.Instances {
		zone[in.ID] = in.Zone
	}
	var instances, envInstances, envKeys []string
	table := 0
	for _, l := range topSquash(b.String()) {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
			continue
		case f[0] == "INSTANCE" || f[0] == "FUNCTION":
			table++
		case table == 1:
			instances = append(instances, zone[f[0]]+" "+f[0])
		case table == 2:
			if len(envInstances) == 0 || envInstances[len(envInstances)-1] != f[0] {
				envInstances = append(envInstances, f[0])
			}
			envKeys = append(envKeys, f[0]+" "+f[1]+" "+f[2])
		}
	}
	if len(instances) != len(doc.Instances) {
		t.Fatalf("%d instance rows, want %d", len(instances), len(doc.Instances))
	}
	if !slices.IsSorted(instances) {
		t.Errorf("instances not sorted by zone and id: %q", instances)
	}
	var withEnvs []string
	for _, zi := range instances {
		id := strings.Fields(zi)[1]
		for _, in := range doc.Instances {
			if in.ID == id && len(in.Environments) > 0 {
				withEnvs = append(withEnvs, id)
			}
		}
	}
	if diff := cmp.Diff(withEnvs, envInstances); diff != "" {
		t.Errorf("environments not grouped in the instances' order (-want +got):\n%s", diff)
	}
	for i := 1; i < len(envKeys); i++ {
		a, b := strings.Fields(envKeys[i-1]), strings.Fields(envKeys[i])
		if a[0] == b[0] && a[1]+" "+a[2] > b[1]+" "+b[2] {
			t.Errorf("environments %q before %q", envKeys[i-1], envKeys[i])
		}
	}
}

func TestDrawScreen(t *testing.T) {
	text := "short\n" + strings.Repeat("x", 50) + "\nthird\nfourth\nfifth\n"
	tests := []struct {
		name          string
		width, height int
		want          []string
	}{
		{"unlimited", 0, 0, []string{"short", strings.Repeat("x", 50), "third", "fourth", "fifth"}},
		{"cut to the width", 10, 0, []string{"short", strings.Repeat("x", 10), "third", "fourth", "fifth"}},
		{"cut to the height", 0, 3, []string{"short", strings.Repeat("x", 50), "… 3 more lines (enlarge the terminal)"}},
		{"fits exactly", 0, 5, []string{"short", strings.Repeat("x", 50), "third", "fourth", "fifth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := drawScreen(&b, text, tt.width, tt.height); err != nil {
				t.Fatal(err)
			}
			s := b.String()
			if !strings.HasPrefix(s, ansiHome) || !strings.HasSuffix(s, ansiClearBelow) {
				t.Fatalf("not drawn from home to a cleared bottom: %q", s)
			}
			s = strings.TrimSuffix(strings.TrimPrefix(s, ansiHome), ansiClearBelow)
			var got []string
			for l := range strings.SplitSeq(s, "\n") {
				got = append(got, strings.TrimSuffix(l, ansiClearLine))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// topFleetServer serves the given documents of GET /shoal/v1/fleet in turn, the
// last one from then on; a nil document answers 503.
func topFleetServer(t *testing.T, docs ...[]byte) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/shoal/v1/fleet" {
			http.NotFound(w, r)
			return
		}
		i := int(n.Add(1)) - 1
		doc := docs[min(i, len(docs)-1)]
		if doc == nil {
			http.Error(w, "the control plane is stopping", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func topReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runTopCmd runs shoal top's command with args and returns its output.
func runTopCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	c := newTopCmd()
	var out, errb bytes.Buffer
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&errb)
	c.SilenceUsage, c.SilenceErrors = true, true
	err := c.ExecuteContext(context.Background())
	return out.String(), err
}

func TestTopOnce(t *testing.T) {
	srv, served := topFleetServer(t, topReadFile(t, topRecording2))
	out, err := runTopCmd(t, "--once", "--endpoint-url", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if served.Load() != 1 {
		t.Errorf("fleet read %d times, want 1", served.Load())
	}
	lines := topSquash(out)
	if want := "shoal top "; !strings.HasPrefix(lines[0], want) || !strings.HasSuffix(lines[0], " "+srv.URL+" every 1s") {
		t.Errorf("header %q", lines[0])
	}
	for _, want := range []string{
		"instances 21 environments 9 in flight 2/44 invocations/s - throttles/s concurrency - cpu - memory -",
		"i-d360674a47c0d91c4 web m7i.large us-east-1a running 0% 60 MiB/8.0 GiB 2 2/2",
		"i-d360674a47c0d91c4 resize:1 e-8f4c90ec1fe3349b ready 1/1 0%",
		"resize:1 3 12 - 27 / 0 / 0 - / - / -",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("no line %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("ANSI sequences in output that is not a terminal: %q", out)
	}
}

func TestTopOnceEndpointFromEnvironment(t *testing.T) {
	srv, served := topFleetServer(t, topReadFile(t, topRecording1))
	t.Setenv("SHOAL_ENDPOINT_URL", srv.URL)
	out, err := runTopCmd(t, "--once")
	if err != nil {
		t.Fatal(err)
	}
	if served.Load() != 1 || !strings.Contains(out, "instances 11 ") {
		t.Errorf("served %d, output:\n%s", served.Load(), out)
	}
}

func TestTopOnceUnreachable(t *testing.T) {
	srv, _ := topFleetServer(t, nil)
	out, err := runTopCmd(t, "--once", "--endpoint-url", srv.URL)
	if err == nil || !strings.Contains(err.Error(), "503 Service Unavailable: the control plane is stopping") {
		t.Errorf("err = %v, want the 503", err)
	}
	if out != "" {
		t.Errorf("output %q, want none", out)
	}
}

func TestTopFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--interval", "0s", "--endpoint-url", "http://127.0.0.1:1"},
		{"--iterations", "-1", "--endpoint-url", "http://127.0.0.1:1"},
		{"--endpoint-url", ""},
		{"-o", "json", "--endpoint-url", "http://127.0.0.1:1"},
		{"extra-arg"},
	} {
		if _, err := runTopCmd(t, args...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

// topBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type topBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *topBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *topBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTop runs runTop in the background with a fake clock, and returns a
// function that lets the clock reach the next refresh.
func startTop(t *testing.T, ctx context.Context, cfg topConfig, deps topDeps) (tick func(), done <-chan error) {
	t.Helper()
	clk := clock.NewFake(topT0)
	deps.Clock = clk
	errc := make(chan error, 1)
	go func() { errc <- runTop(ctx, cfg, deps) }()
	return func() {
		t.Helper()
		poll.Until(t, 10*time.Second, func() error {
			if clk.Waiters() == 0 {
				return errors.New("shoal top is not waiting for its next refresh")
			}
			return nil
		})
		clk.Advance(cfg.Interval)
	}, errc
}

// TestTopRefreshes runs four refreshes against a control plane that goes away
// for the third: rates come from the counters' change, the unreachable frame
// keeps the last fleet, and the fourth frame rates over the two seconds since
// the last good read.
func TestTopRefreshes(t *testing.T) {
	rec1, rec2 := topReadFile(t, topRecording1), topReadFile(t, topRecording2)
	srv, served := topFleetServer(t, rec1, rec2, nil, rec2)
	out := &topBuffer{}
	tick, done := startTop(t, context.Background(), topConfig{Endpoint: srv.URL, Interval: time.Second, Iterations: 4}, topDeps{Out: out})
	for range 3 {
		tick()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if served.Load() != 4 {
		t.Errorf("fleet read %d times, want 4", served.Load())
	}
	frames := strings.Split(out.String(), "\n\nshoal top ")
	if len(frames) != 4 {
		t.Fatalf("%d frames, want 4:\n%s", len(frames), out.String())
	}
	want := [][]string{
		{"shoal top 04:00:00 " + srv.URL + " every 1s",
			"instances 11 environments 8 in flight 7/43 invocations/s - throttles/s concurrency - cpu - memory -"},
		{"04:00:01 " + srv.URL + " every 1s",
			"instances 21 environments 9 in flight 2/44 invocations/s 22.0 throttles/s concurrency 15.0 cpu 0.0 memory 0.0"},
		{"04:00:02 " + srv.URL + " every 1s",
			"unreachable: fleet: 503 Service Unavailable: the control plane is stopping (showing the fleet as of 04:00:01)",
			"instances 21 environments 9 in flight 2/44 invocations/s 22.0 throttles/s concurrency 15.0 cpu 0.0 memory 0.0"},
		{"04:00:03 " + srv.URL + " every 1s",
			"instances 21 environments 9 in flight 2/44 invocations/s 0.0 throttles/s concurrency 0.0 cpu 0.0 memory 0.0"},
	}
	for i, f := range frames {
		got := topSquash(f)
		if diff := cmp.Diff(want[i], got[:len(want[i])]); diff != "" {
			t.Errorf("frame %d (-want +got):\n%s", i+1, diff)
		}
	}
}

// TestTopScreen draws on a "terminal" until the context ends, as Ctrl-C does:
// the view takes the alternate screen and hides the cursor, keeps every line
// inside the terminal, and gives both back when it ends.
func TestTopScreen(t *testing.T) {
	srv, served := topFleetServer(t, topReadFile(t, topRecording2))
	out := &topBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const width, height = 60, 12
	tick, done := startTop(t, ctx, topConfig{Endpoint: srv.URL, Interval: time.Second},
		topDeps{Out: out, Screen: func() (int, int) { return width, height }})
	tick()
	poll.Until(t, 10*time.Second, func() error {
		if n := strings.Count(out.String(), ansiHome); n < 2 {
			return fmt.Errorf("%d frames drawn, want 2", n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if served.Load() < 2 {
		t.Errorf("fleet read %d times, want 2 or more", served.Load())
	}
	s := out.String()
	if !strings.HasPrefix(s, ansiEnterScreen) || !strings.HasSuffix(s, ansiLeaveScreen) {
		t.Fatalf("screen not taken and given back: %q", s)
	}
	frames := strings.Split(strings.TrimSuffix(strings.TrimPrefix(s, ansiEnterScreen), ansiLeaveScreen), ansiHome)[1:]
	for i, f := range frames {
		lines := strings.Split(strings.TrimSuffix(f, ansiClearBelow), "\n")
		if len(lines) > height {
			t.Errorf("frame %d has %d lines, want at most %d", i+1, len(lines), height)
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(strings.TrimSuffix(l, ansiClearLine)); n > width {
				t.Errorf("frame %d: line of %d runes, want at most %d: %q", i+1, n, width, l)
			}
		}
		if !strings.Contains(f, "more lines (enlarge the terminal)") {
			t.Errorf("frame %d does not say it was cut: %q", i+1, f)
		}
	}
}
