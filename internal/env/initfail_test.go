package env

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/meter"
)

// memUsage is a UsageSink that keeps every event.
type memUsage struct {
	mu     sync.Mutex
	events []*meter.Event
}

func (m *memUsage) InvocationDone(spec *Spec, requestID string, start time.Time, r *Result) {
	m.mu.Lock()
	m.events = append(m.events, UsageEvent(spec, requestID, start, r, meter.OnDemand))
	m.mu.Unlock()
}

// TestInitFailureTrace: every way init fails — a missing bootstrap, an init
// error the runtime reports, a runtime that exits, an init that times out —
// leaves the function's lines and Lambda's INIT_REPORT in the log stream and
// in the tail of the invocation that triggered it, and that invocation is
// recorded with its outcome.
func TestInitFailureTrace(t *testing.T) {
	cases := []struct {
		name     string
		spec     func(*Spec)
		errType  string
		report   string // the INIT_REPORT line, durations elided
		lines    []string
		outcome  string
		platform bool // the platform wrote the error (its message gets the request id)
	}{
		{"missing bootstrap", func(s *Spec) { s.CodeDir = t.TempDir() }, "Runtime.InvalidEntrypoint",
			"INIT_REPORT Init Duration: X ms\tPhase: init\tStatus: error\tError Type: Runtime.InvalidEntrypoint", nil, meter.OutcomeError, true},
		{"init error", func(s *Spec) { s.Environment = map[string]string{"INIT_ERROR": "1"} }, "ConfigError",
			"INIT_REPORT Init Duration: X ms\tPhase: init\tStatus: error\tError Type: ConfigError",
			[]string{"the configuration is missing"}, meter.OutcomeError, false},
		{"runtime exits", func(s *Spec) { s.Environment = map[string]string{"INIT_PANIC": "1"} }, "Runtime.ExitError",
			"INIT_REPORT Init Duration: X ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError",
			[]string{"panic: init went wrong"}, meter.OutcomeCrash, true},
		{"init timeout", func(s *Spec) {
			s.Environment = map[string]string{"INIT_SLEEP_MS": "60000"}
			s.InitTimeout = 500 * time.Millisecond
		}, "Sandbox.Timedout", "INIT_REPORT Init Duration: X ms\tPhase: init\tStatus: timeout",
			[]string{"initialising slowly"}, meter.OutcomeTimeout, true},
	}
	duration := regexp.MustCompile(`Init Duration: [0-9]+\.[0-9]{2} ms`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			usage := &memUsage{}
			h.deps.Usage = usage
			spec := goSpec("initfail")
			c.spec(&spec)
			_, err := Start(context.Background(), spec, h.deps)
			var ie *InitError
			if !errors.As(err, &ie) || ie.ErrorType != c.errType {
				t.Fatalf("Start: %v, want an init error %s", err, c.errType)
			}
			for what, text := range map[string]string{"log stream": h.logs.text(), "init log": string(ie.Log)} {
				var reports []string
				for _, l := range strings.Split(text, "\n") {
					if strings.HasPrefix(l, "INIT_REPORT") {
						reports = append(reports, duration.ReplaceAllString(l, "Init Duration: X ms"))
					}
				}
				if diff := cmp.Diff([]string{c.report}, reports); diff != "" {
					t.Errorf("%s: INIT_REPORT lines (-want +got):\n%s\n%s", what, diff, text)
				}
				for _, l := range c.lines {
					if !strings.Contains(text, l) {
						t.Errorf("%s lacks the function's line %q:\n%s", what, l, text)
					}
				}
			}

			id := newReqID()
			r := ie.Answer(Invocation{RequestID: id, TailLog: true})
			if r.FunctionError != "Unhandled" || r.ErrorType != c.errType || string(r.LogTail) != string(ie.Log) {
				t.Errorf("answer %+v, tail %q", r, r.LogTail)
			}
			if e := decodeErr(t, r.Payload); c.platform != strings.HasPrefix(e.ErrorMessage, "RequestId: "+id+" Error: ") {
				t.Errorf("payload %s", r.Payload)
			}
			ie.Answer(Invocation{RequestID: id}) // answered twice, recorded once
			usage.mu.Lock()
			defer usage.mu.Unlock()
			if len(usage.events) != 1 {
				t.Fatalf("%d usage events, want 1", len(usage.events))
			}
			ev := usage.events[0]
			if ev.RequestID != id || ev.Kind != meter.KindInvocation || ev.Outcome != c.outcome || ev.ErrorType != c.errType ||
				ev.InitMs <= 0 || ev.BilledMs != int64(billed(ie.InitDuration)/time.Millisecond) || ev.Function != "initfail" {
				t.Errorf("usage event %+v", ev)
			}
		})
	}
}

// TestJSONInitFailureMissingBootstrap: with the JSON format a missing
// bootstrap writes platform.initStart and an initReport with its error type.
func TestJSONInitFailureMissingBootstrap(t *testing.T) {
	h := newHarness(t)
	spec := jsonSpec(goSpec("jsonnoboot"), "INFO", "INFO")
	spec.CodeDir = t.TempDir()
	_, err := Start(context.Background(), spec, h.deps)
	var ie *InitError
	if !errors.As(err, &ie) {
		t.Fatalf("Start: %v", err)
	}
	for what, text := range map[string]string{"log stream": h.logs.text(), "init log": string(ie.Log)} {
		recs := platformRecords(t, text)
		if diff := cmp.Diff([]string{recInitStart, recInitReport}, recordTypes(recs)); diff != "" {
			t.Fatalf("%s: records (-want +got):\n%s\n%s", what, diff, text)
		}
		if rep := recs[1].Record; rep["status"] != "error" || rep["errorType"] != "Runtime.InvalidEntrypoint" || rep["phase"] != "init" {
			t.Errorf("%s: platform.initReport %v", what, rep)
		}
	}
}
