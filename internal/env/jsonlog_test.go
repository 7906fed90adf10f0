package env

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func jsonSpec(s Spec, app, sys string) Spec {
	s.Logging = LogConfig{Format: LogFormatJSON, ApplicationLevel: app, SystemLevel: sys}
	return s
}

// sysRecord is a platform record as Lambda writes it in the JSON log format.
type sysRecord struct {
	Time   string         `json:"time"`
	Type   string         `json:"type"`
	Record map[string]any `json:"record"`
}

// platformRecords parses the lines of text that are platform records; every
// line that starts like one must be one, with a well-formed time.
func platformRecords(t *testing.T, text string) []sysRecord {
	t.Helper()
	var out []sysRecord
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if !strings.HasPrefix(line, `{"time":`) {
			continue
		}
		var r sysRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Errorf("platform line is not JSON: %v\n%s", err, line)
			continue
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", r.Time); err != nil || !strings.HasPrefix(r.Type, "platform.") {
			t.Errorf("platform record envelope: %s", line)
		}
		out = append(out, r)
	}
	return out
}

func recordTypes(recs []sysRecord) []string {
	var ts []string
	for _, r := range recs {
		ts = append(ts, r.Type)
	}
	return ts
}

func findRecord(recs []sysRecord, typ string) map[string]any {
	for _, r := range recs {
		if r.Type == typ {
			return r.Record
		}
	}
	return nil
}

func TestJSONPlatformRecords(t *testing.T) {
	h := newHarness(t)
	env := h.start(jsonSpec(goSpec("jsonfmt"), "", ""))
	id := newReqID()
	r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(`{"mode":"log"}`), TailLog: true})
	if err != nil {
		t.Fatal(err)
	}
	tail := string(r.LogTail)
	if strings.Contains(tail, "START RequestId") || strings.Contains(tail, "END RequestId") || strings.Contains(tail, "REPORT RequestId") {
		t.Errorf("text platform lines with the JSON format:\n%s", tail)
	}
	lines := strings.Split(strings.TrimSuffix(tail, "\n"), "\n")
	if len(lines) != 4 || lines[1] != "hello from the function" && lines[2] != "hello from the function" {
		t.Fatalf("tail (start, two lines of the function's, report):\n%s", tail)
	}
	recs := platformRecords(t, tail)
	if diff := cmp.Diff([]string{recStart, recReport}, recordTypes(recs)); diff != "" {
		t.Fatalf("records at INFO (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"requestId": id, "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:jsonfmt", "version": "$LATEST"},
		recs[0].Record); diff != "" {
		t.Errorf("platform.start record (-want +got):\n%s", diff)
	}
	rep := recs[1].Record
	m, _ := rep["metrics"].(map[string]any)
	if rep["requestId"] != id || rep["status"] != "success" || rep["errorType"] != nil || m == nil {
		t.Fatalf("platform.report record: %v", rep)
	}
	wantMetrics := map[string]float64{
		"durationMs":       float64(r.Duration.Microseconds()) / 1000,
		"billedDurationMs": float64(r.BilledDuration / time.Millisecond),
		"memorySizeMB":     128,
		"maxMemoryUsedMB":  float64(r.MaxMemoryUsedMB),
		"initDurationMs":   float64(r.InitDuration.Microseconds()) / 1000,
	}
	gotMetrics := map[string]float64{}
	for k, v := range m {
		gotMetrics[k], _ = v.(float64)
	}
	if diff := cmp.Diff(wantMetrics, gotMetrics); diff != "" || r.InitDuration <= 0 {
		t.Errorf("report metrics (-want +got):\n%s", diff)
	}
	// The sink has the init's record before the first invocation.
	all := platformRecords(t, h.logs.text())
	if diff := cmp.Diff([]string{recInitStart, recStart, recReport}, recordTypes(all)); diff != "" {
		t.Errorf("records in the log (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"initializationType": "on-demand", "phase": "init", "functionName": "jsonfmt",
		"functionVersion": "$LATEST", "instanceMaxMemory": float64(128 << 20)}, findRecord(all, recInitStart)); diff != "" {
		t.Errorf("platform.initStart record (-want +got):\n%s", diff)
	}
	// A warm invocation reports no init.
	r2 := invoke(t, env, `"again"`, true)
	if rep := findRecord(platformRecords(t, string(r2.LogTail)), recReport); rep == nil || rep["metrics"].(map[string]any)["initDurationMs"] != nil {
		t.Errorf("warm report: %v", rep)
	}
}

func TestJSONSystemLogLevel(t *testing.T) {
	cases := []struct {
		level      string
		invocation []string // the records in an invocation's tail
		log        []string // every record written for init and one invocation
	}{
		{"WARN", nil, nil},
		{"INFO", []string{recStart, recReport}, []string{recInitStart, recStart, recReport}},
		{"DEBUG", []string{recStart, recRuntimeDone, recReport},
			[]string{recInitStart, recInitRuntimeDone, recInitReport, recStart, recRuntimeDone, recReport}},
	}
	for _, c := range cases {
		t.Run(c.level, func(t *testing.T) {
			h := newHarness(t)
			env := h.start(jsonSpec(goSpec("syslevel"), "INFO", c.level))
			r := invoke(t, env, `{"mode":"log"}`, true)
			tail := string(r.LogTail)
			if diff := cmp.Diff(c.invocation, recordTypes(platformRecords(t, tail))); diff != "" {
				t.Errorf("invocation records (-want +got):\n%s", diff)
			}
			if !strings.Contains(tail, "hello from the function\n") {
				t.Errorf("the function's line is missing:\n%s", tail)
			}
			all := platformRecords(t, h.logs.text())
			if diff := cmp.Diff(c.log, recordTypes(all)); diff != "" {
				t.Errorf("log records (-want +got):\n%s", diff)
			}
			if c.level != "DEBUG" {
				return
			}
			done := findRecord(all, recRuntimeDone)
			if done["status"] != "success" || done["metrics"].(map[string]any)["producedBytes"] != float64(len(r.Payload)) {
				t.Errorf("platform.runtimeDone %v for payload %s", done, r.Payload)
			}
			if ir := findRecord(all, recInitReport); ir["status"] != "success" || ir["phase"] != "init" || ir["metrics"].(map[string]any)["durationMs"] == nil {
				t.Errorf("platform.initReport %v", ir)
			}
		})
	}
}

func TestJSONApplicationLogLevel(t *testing.T) {
	lines := []string{
		`{"timestamp":"2026-11-26T10:00:00.000Z","level":"TRACE","message":"trace"}`,
		`{"timestamp":"2026-11-26T10:00:00.000Z","level":"DEBUG","message":"debug"}`,
		`{"level":"debug","msg":"lower-case debug"}`,
		`plain line`,
		`{"message":"object without a level"}`,
		`{"level":"DEBUG","message":"not JSON"`,
		`{"level":"LOUD","message":"not a level"}`,
		`{"level":"WARN","message":"warn"}`,
		`{"level":"WARNING","message":"python warning"}`,
		`{"level":"ERROR","message":"error"}`,
		`{"level":"FATAL","message":"fatal"}`,
	}
	// kept lists the lines (by index) each application level keeps.
	cases := []struct {
		level string
		kept  []int
	}{
		{"TRACE", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"DEBUG", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"INFO", []int{3, 4, 5, 6, 7, 8, 9, 10}},
		{"WARN", []int{7, 8, 9, 10}},
		{"FATAL", []int{10}},
	}
	payload, _ := json.Marshal(map[string]any{"mode": "print", "lines": lines})
	for _, c := range cases {
		t.Run(c.level, func(t *testing.T) {
			h := newHarness(t)
			env := h.start(jsonSpec(goSpec("applevel"), c.level, "INFO"))
			r := invoke(t, env, string(payload), true)
			var got []string
			for _, l := range strings.Split(strings.TrimSuffix(string(r.LogTail), "\n"), "\n") {
				if !strings.HasPrefix(l, `{"time":`) {
					got = append(got, l)
				}
			}
			var want []string
			for _, i := range c.kept {
				want = append(want, lines[i])
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the function's lines (-want +got):\n%s", diff)
			}
			// The platform's records are filtered by the system level only.
			if diff := cmp.Diff([]string{recStart, recReport}, recordTypes(platformRecords(t, string(r.LogTail)))); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("Text keeps everything", func(t *testing.T) {
		h := newHarness(t)
		spec := goSpec("applevel")
		spec.Logging = LogConfig{Format: LogFormatText}
		env := h.start(spec)
		r := invoke(t, env, string(payload), true)
		for _, l := range lines {
			if !strings.Contains(string(r.LogTail), l+"\n") {
				t.Errorf("line %q missing:\n%s", l, r.LogTail)
			}
		}
	})
}

func TestJSONEnvironment(t *testing.T) {
	for _, c := range []struct {
		name             string
		logging          LogConfig
		user             map[string]string
		format, logLevel string
	}{
		{"text", LogConfig{}, nil, "", ""},
		{"json", LogConfig{Format: LogFormatJSON, ApplicationLevel: "DEBUG"}, nil, "JSON", "DEBUG"},
		{"json default level", LogConfig{Format: LogFormatJSON}, nil, "JSON", "INFO"},
		{"the user's setting wins", LogConfig{Format: LogFormatJSON, ApplicationLevel: "WARN"}, map[string]string{"AWS_LAMBDA_LOG_LEVEL": "TRACE"}, "JSON", "TRACE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			spec := goSpec("logenv")
			spec.Logging = c.logging
			spec.Environment = c.user
			env := h.start(spec)
			r := invoke(t, env, `{"mode":"context"}`, false)
			var got struct {
				Env map[string]string `json:"env"`
			}
			if err := json.Unmarshal(r.Payload, &got); err != nil {
				t.Fatalf("%v: %s", err, r.Payload)
			}
			if got.Env["AWS_LAMBDA_LOG_FORMAT"] != c.format || got.Env["AWS_LAMBDA_LOG_LEVEL"] != c.logLevel {
				t.Errorf("AWS_LAMBDA_LOG_FORMAT=%q AWS_LAMBDA_LOG_LEVEL=%q, want %q %q",
					got.Env["AWS_LAMBDA_LOG_FORMAT"], got.Env["AWS_LAMBDA_LOG_LEVEL"], c.format, c.logLevel)
			}
		})
	}
}

// The report carries how an invocation ended, and no text line says it.
func TestJSONReportStatus(t *testing.T) {
	cases := []struct {
		name, payload     string
		status, errorType string
	}{
		{"function error", `{"mode":"error"}`, "error", "Runtime.Unknown"},
		{"timeout", `{"mode":"sleep","sleepMs":3000}`, "timeout", ""},
		{"exit", `{"mode":"exit"}`, "error", "Runtime.ExitError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			spec := jsonSpec(goSpec("status"), "INFO", "DEBUG")
			spec.Timeout = time.Second
			env := h.start(spec)
			r := invoke(t, env, c.payload, true)
			tail := string(r.LogTail)
			if strings.Contains(tail, "Task timed out") || strings.Contains(tail, "RequestId:") {
				t.Errorf("text platform line in a JSON log:\n%s", tail)
			}
			recs := platformRecords(t, tail)
			for _, typ := range []string{recRuntimeDone, recReport} {
				rec := findRecord(recs, typ)
				if rec == nil {
					t.Fatalf("no %s:\n%s", typ, tail)
				}
				errType, _ := rec["errorType"].(string)
				if rec["status"] != c.status || errType != c.errorType {
					t.Errorf("%s status %v errorType %v, want %s %q", typ, rec["status"], rec["errorType"], c.status, c.errorType)
				}
			}
		})
	}
}

// On Managed Instances the records follow AWS's emulator of them: no
// runtimeDone even at DEBUG, a report whose metrics are the duration alone,
// and a timeout that keeps its errorType. A tenant's id is in start and report.
func TestJSONManagedRecords(t *testing.T) {
	h := newHarness(t)
	spec := jsonSpec(multiSpec(goSpec("mirecords"), 2), "INFO", "DEBUG")
	spec.Timeout = time.Second
	env := h.start(spec)
	r, err := env.Invoke(context.Background(), Invocation{RequestID: newReqID(), Payload: []byte(`{}`), TailLog: true, TenantID: "tenant-1"})
	if err != nil {
		t.Fatal(err)
	}
	recs := platformRecords(t, string(r.LogTail))
	if got := strings.Join(recordTypes(recs), " "); got != recStart+" "+recReport {
		t.Fatalf("records %s, want start and report:\n%s", got, r.LogTail)
	}
	report := findRecord(recs, recReport)
	metrics, _ := report["metrics"].(map[string]any)
	if _, ok := metrics["durationMs"].(float64); !ok || len(metrics) != 1 {
		t.Errorf("report metrics %v, want durationMs alone", metrics)
	}
	if report["status"] != "success" || report["tenantId"] != "tenant-1" || findRecord(recs, recStart)["tenantId"] != "tenant-1" {
		t.Errorf("report %v, start %v", report, findRecord(recs, recStart))
	}
	r = invoke(t, env, `{"mode":"sleep","sleepMs":3000}`, true)
	report = findRecord(platformRecords(t, string(r.LogTail)), recReport)
	if report["status"] != "timeout" || report["errorType"] != "Sandbox.Timedout" {
		t.Errorf("timeout report %v", report)
	}
}

func TestJSONInitFailure(t *testing.T) {
	h := newHarness(t)
	spec := jsonSpec(goSpec("initfail"), "INFO", "INFO")
	spec.Environment = map[string]string{"INIT_PANIC": "1"}
	_, err := Start(context.Background(), spec, h.deps)
	ie, ok := err.(*InitError)
	if !ok {
		t.Fatalf("Start: %v", err)
	}
	recs := platformRecords(t, string(ie.Log))
	if diff := cmp.Diff([]string{recInitStart, recInitReport}, recordTypes(recs)); diff != "" {
		t.Fatalf("init log records (-want +got):\n%s\n%s", diff, ie.Log)
	}
	rep := recs[1].Record
	if rep["status"] != "error" || rep["errorType"] != ie.ErrorType || rep["phase"] != "init" {
		t.Errorf("platform.initReport %v for %s", rep, ie.ErrorType)
	}
	if strings.Contains(string(ie.Log), "INIT_REPORT") {
		t.Errorf("text INIT_REPORT in a JSON log:\n%s", ie.Log)
	}
}

// On a multi-slot environment each invocation's records carry its own id and
// stay in its own tail.
func TestJSONMultiSlot(t *testing.T) {
	h := newHarness(t)
	env := h.start(jsonSpec(multiSpec(goSpec("jsonmulti"), 3), "INFO", "INFO"))
	ids := make([]string, 3)
	res := make([]Result, 3)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = newReqID()
		wg.Go(func() {
			var err error
			res[i], err = env.Invoke(context.Background(), Invocation{RequestID: ids[i], Payload: []byte(`{"mode":"barrier","n":3}`), TailLog: true})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, r := range res {
		recs := platformRecords(t, string(r.LogTail))
		if diff := cmp.Diff([]string{recStart, recReport}, recordTypes(recs)); diff != "" {
			t.Errorf("invocation %d (-want +got):\n%s", i, diff)
			continue
		}
		for _, rec := range recs {
			if rec.Record["requestId"] != ids[i] {
				t.Errorf("invocation %s has a record of %v", ids[i], rec.Record["requestId"])
			}
		}
	}
}

func TestLineLevel(t *testing.T) {
	cases := []struct {
		line string
		want logLevel
	}{
		{`plain`, levelInfo},
		{``, levelInfo},
		{`{"level":"DEBUG"}`, levelDebug},
		{` {"level": "trace", "x": {"level": "FATAL"}} `, levelTrace},
		{`{"x":{"level":"ERROR"}}`, levelInfo},
		{`{"Level":"ERROR"}`, levelInfo},
		{`{"level":3}`, levelInfo},
		{`{"level":"ERROR"} trailing`, levelInfo},
		{`["level","ERROR"]`, levelInfo},
		{`{"level":"CRITICAL"}`, levelFatal},
		{`{"level":"Warning"}`, levelWarn},
	}
	for _, c := range cases {
		if got := lineLevel([]byte(c.line)); got != c.want {
			t.Errorf("lineLevel(%s) = %d, want %d", c.line, got, c.want)
		}
	}
}

func TestRecordErrorType(t *testing.T) {
	for in, want := range map[string]string{
		"Runtime.ExitError":             "Runtime.ExitError",
		"Function.ResponseSizeTooLarge": "Function.ResponseSizeTooLarge",
		"Runtime.UserCodeSyntaxError":   "Runtime.UserCodeSyntaxError",
		"myError":                       "Runtime.Unknown",
		"Function.x":                    "Function.Unknown",
		"":                              "Runtime.Unknown",
		"Runtime.":                      "Runtime.Unknown",
	} {
		if got := recordErrorType(in); got != want {
			t.Errorf("recordErrorType(%q) = %q, want %q", in, got, want)
		}
	}
}

// keepLine decides as lineLevel would, without parsing most lines.
func TestKeepLine(t *testing.T) {
	lines := []string{
		`{"timestamp":"2026-11-26T10:00:00.000Z","level":"INFO","requestId":"r","message":"hi"}`,
		`{"level":"DEBUG","message":"d"}`, `{"level" : "warn"}`, `{"level":"ERROR"`, `{"level":"FATAL"} x`,
		`{"message":{"level":"DEBUG"},"level":"ERROR"}`, `{"message":{"level":"ERROR"}}`,
		`text "level":"DEBUG" in a plain line`, "plain", `{"level":42}`, `{"level":"verbose"}`, ``,
		"{\"level\":\t\"WARN\"}", "{\"level\"\n:\"WARN\"}", `{"level":"\u0057ARN"}`, `{"level":"x","le\u0076el":"DEBUG"}`,
	}
	for _, line := range lines {
		for min := levelTrace; min <= levelFatal; min++ {
			if got, want := keepLine([]byte(line), min), lineLevel([]byte(line)) >= min; got != want {
				t.Errorf("keepLine(%q, %d) = %v, want %v", line, min, got, want)
			}
		}
	}
}

func FuzzLineLevel(f *testing.F) {
	for _, s := range []string{`{"level":"DEBUG"}`, "plain", `{"level":"warn","msg":"\u00e9"}`, `{"level":`,
		`{"message":{"level":"DEBUG"},"level":"ERROR"}`, `{"level":"DEBUG"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got := lineLevel(line)
		if got < levelTrace || got > levelFatal {
			t.Fatalf("lineLevel(%q) = %d", line, got)
		}
		for min := levelTrace; min <= levelFatal; min++ {
			if keep := keepLine(line, min); keep != (got >= min) {
				t.Fatalf("keepLine(%q, %d) = %v, lineLevel says %d", line, min, keep, got)
			}
		}
		// A level other than INFO comes only from the "level" string of a JSON object.
		var obj map[string]json.RawMessage
		var name string
		if got != levelInfo && (json.Unmarshal(line, &obj) != nil || json.Unmarshal(obj["level"], &name) != nil) {
			t.Fatalf("lineLevel(%q) = %d from no level", line, got)
		}
	})
}
