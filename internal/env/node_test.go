package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeCode writes files into a fresh code directory.
func writeCode(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

func nodeSpec(name, handler, dir string) Spec {
	s := goSpec(name)
	s.Runtime = "nodejs20.x"
	s.MemoryMB = 1769 // one vCPU: node start-up takes ~2 s of wall time at 128 MB's CPU share
	s.Handler = handler
	s.CodeDir = dir
	return s
}

const nodeCode = `
exports.asyncEcho = async (event, context) => ({ event, id: context.awsRequestId,
  fn: context.functionName, arn: context.invokedFunctionArn, mem: context.memoryLimitInMB,
  remaining: context.getRemainingTimeInMillis() > 0, cc: context.clientContext,
  region: process.env.AWS_REGION, exec: process.env.AWS_EXECUTION_ENV });
exports.callback = (event, context, cb) => { console.log('in callback', event.n); setTimeout(() => cb(null, { n: event.n + 1 }), 1); };
exports.fails = async () => { const e = new Error('boom'); e.name = 'CustomError'; throw e; };
exports.cbFails = (event, context, cb) => cb(new TypeError('bad type'));
exports.nested = { fn: async () => 'nested' };
`

func TestNodeHandlers(t *testing.T) {
	needTool(t, "node")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"index.js": nodeCode})
	cases := []struct {
		name, handler, payload string
		check                  func(t *testing.T, r Result, id string)
	}{
		{"async", "index.asyncEcho", `{"a":1}`, func(t *testing.T, r Result, id string) {
			var got struct {
				Event            map[string]int `json:"event"`
				ID, Fn, ARN, Mem string
				Remaining        bool
				CC               map[string]any `json:"cc"`
				Region, Exec     string
			}
			if err := json.Unmarshal(r.Payload, &got); err != nil {
				t.Fatalf("%v: %s", err, r.Payload)
			}
			if got.Event["a"] != 1 || got.ID != id || got.Fn != "node" || got.Mem != "1769" || !got.Remaining ||
				got.Region != "us-east-1" || got.Exec != "AWS_Lambda_nodejs20.x" || got.CC["custom"] == nil {
				t.Errorf("context: %s", r.Payload)
			}
		}},
		{"callback", "index.callback", `{"n":41}`, func(t *testing.T, r Result, id string) {
			if string(r.Payload) != `{"n":42}` {
				t.Errorf("payload %s", r.Payload)
			}
			if !strings.Contains(string(r.LogTail), "\t"+id+"\tINFO\tin callback 41") {
				t.Errorf("console.log line missing:\n%s", r.LogTail)
			}
		}},
		{"error", "index.fails", `{}`, func(t *testing.T, r Result, id string) {
			e := decodeErr(t, r.Payload)
			if r.FunctionError != "Unhandled" || r.ErrorType != "CustomError" || e.ErrorMessage != "boom" || len(e.Trace) == 0 {
				t.Errorf("result %+v payload %s", r, r.Payload)
			}
		}},
		{"callback error", "index.cbFails", `{}`, func(t *testing.T, r Result, id string) {
			if r.ErrorType != "TypeError" || decodeErr(t, r.Payload).ErrorMessage != "bad type" {
				t.Errorf("payload %s", r.Payload)
			}
		}},
		{"nested", "index.nested.fn", `{}`, func(t *testing.T, r Result, id string) {
			if string(r.Payload) != `"nested"` {
				t.Errorf("payload %s", r.Payload)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := h.startT(t, nodeSpec("node", c.handler, dir))
			id := newReqID()
			r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(c.payload),
				TailLog: true, ClientContext: `{"custom":{"x":"y"}}`})
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, r, id)
		})
	}
}

func TestNodeESM(t *testing.T) {
	needTool(t, "node")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{
		"app.mjs": `import os from 'node:os'; export const handler = async (event) => ({ esm: true, got: event.v, host: typeof os.hostname() });`,
	})
	env := h.start(nodeSpec("esm", "app.handler", dir))
	r := invoke(t, env, `{"v":"x"}`, false)
	if string(r.Payload) != `{"esm":true,"got":"x","host":"string"}` {
		t.Errorf("payload %s", r.Payload)
	}
}

func TestNodeInitErrors(t *testing.T) {
	needTool(t, "node")
	h := newHarness(t)
	cases := []struct {
		name, handler string
		files         map[string]string
		wantType      string
		wantMsg       string
	}{
		{"missing module", "nothere.handler", map[string]string{"index.js": nodeCode}, "Runtime.ImportModuleError", "Cannot find module 'nothere'"},
		{"missing handler", "index.nope", map[string]string{"index.js": nodeCode}, "Runtime.HandlerNotFound", "index.nope is undefined or not exported"},
		{"syntax error", "bad.handler", map[string]string{"bad.js": "exports.handler = async (e) => {;"}, "Runtime.UserCodeSyntaxError", "SyntaxError"},
		{"throws at load", "throws.handler", map[string]string{"throws.js": "throw new RangeError('at load');"}, "RangeError", "at load"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Start(context.Background(), nodeSpec("nodeinit", c.handler, writeCode(t, c.files)), h.deps)
			var ie *InitError
			if !errors.As(err, &ie) {
				t.Fatalf("Start: %v", err)
			}
			e := decodeErr(t, ie.Payload)
			if ie.ErrorType != c.wantType || e.ErrorType != c.wantType || !strings.Contains(e.ErrorMessage, c.wantMsg) {
				t.Errorf("init error %s: %s", ie.ErrorType, ie.Payload)
			}
		})
	}
}

const nodeLogCode = `
exports.logs = async (event, context) => {
  console.trace('trace', event.n);
  console.debug('debug', event.n);
  console.log('log', event.n);
  console.info({ n: event.n });
  console.warn('warn', new RangeError('bad'));
  console.error('error', event.n);
  console.fatal('fatal', event.n);
  await new Promise((r) => setTimeout(r, event.wait || 0));
  console.log('after', event.n);
  return context.awsRequestId;
};
exports.fails = async () => { throw new TypeError('nope'); };
`

// appRecord is a line of the function's in Lambda's JSON log format.
type appRecord struct {
	Timestamp    string   `json:"timestamp"`
	Level        string   `json:"level"`
	RequestID    string   `json:"requestId"`
	Message      any      `json:"message"`
	Logger       string   `json:"logger"`
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	StackTrace   []string `json:"stackTrace"`
}

// appRecords parses the function's lines (not the platform's) of a log; each
// must be a JSON object with a timestamp and a level, unless plain is allowed.
func appRecords(t *testing.T, text string, plain func(string) bool) []appRecord {
	t.Helper()
	var out []appRecord
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(line, `{"time":`) || plain != nil && plain(line) {
			continue
		}
		var r appRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Errorf("not a JSON log line: %v\n%s", err, line)
			continue
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", r.Timestamp); err != nil || r.Level == "" {
			t.Errorf("log record without timestamp or level: %s", line)
		}
		out = append(out, r)
	}
	return out
}

func TestNodeJSONLogs(t *testing.T) {
	needTool(t, "node")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"index.js": nodeLogCode})
	env := h.start(jsonSpec(nodeSpec("nodejson", "index.logs", dir), "DEBUG", "INFO"))
	id, r := invokeTail(t, env, `{"n":1}`)
	recs := appRecords(t, string(r.LogTail), nil)
	var got []string
	for _, rec := range recs {
		if rec.RequestID != id {
			t.Errorf("record of request %q, want %q", rec.RequestID, id)
		}
		msg, _ := json.Marshal(rec.Message)
		got = append(got, rec.Level+" "+string(msg))
	}
	want := []string{`DEBUG "debug 1"`, `INFO "log 1"`, `INFO {"n":1}`, "WARN", `ERROR "error 1"`, `FATAL "fatal 1"`, `INFO "after 1"`}
	if len(got) == len(want) {
		got[3] = got[3][:4] // the warning's message holds a stack trace
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("records (-want +got):\n%s\n%s", diff, r.LogTail)
	}
	if w := recs[3]; w.ErrorType != "RangeError" || w.ErrorMessage != "bad" || len(w.StackTrace) < 2 ||
		!strings.HasPrefix(w.Message.(string), "warn RangeError: bad") {
		t.Errorf("warning with an error: %+v", w)
	}

	// The bootstrap itself honours AWS_LAMBDA_LOG_LEVEL (here the user's,
	// while the agent keeps every line), and a handler's error is a record.
	spec := jsonSpec(nodeSpec("nodejson", "index.fails", dir), "TRACE", "INFO")
	spec.Environment = map[string]string{"AWS_LAMBDA_LOG_LEVEL": "ERROR"}
	env = h.start(spec)
	id, r = invokeTail(t, env, `{}`)
	recs = appRecords(t, string(r.LogTail), nil)
	if len(recs) != 1 || recs[0].Level != "ERROR" || recs[0].RequestID != id {
		t.Fatalf("records %+v\n%s", recs, r.LogTail)
	}
	if m, _ := recs[0].Message.(map[string]any); m["errorType"] != "TypeError" || m["errorMessage"] != "nope" {
		t.Errorf("error record message %v", recs[0].Message)
	}
	spec.Handler = "index.logs"
	env = h.start(spec)
	r = invoke(t, env, `{"n":2}`, true)
	for _, rec := range appRecords(t, string(r.LogTail), nil) {
		if rec.Level != "ERROR" && rec.Level != "FATAL" {
			t.Errorf("a %s record at AWS_LAMBDA_LOG_LEVEL=ERROR:\n%s", rec.Level, r.LogTail)
		}
	}
}

// With several invocations in one Node.js process at once, each record
// carries the id of the invocation that logged it.
func TestNodeJSONLogsMultiConcurrency(t *testing.T) {
	needTool(t, "node")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"index.js": nodeLogCode})
	env := h.start(jsonSpec(multiSpec(nodeSpec("nodejsonmulti", "index.logs", dir), 3), "INFO", "INFO"))
	checkRequestIDs(t, h, env, 3)
}

// checkRequestIDs runs n overlapping invocations of a handler that logs
// "log N" and, after a pause, "after N", and checks that each of those
// records carries the id of invocation N.
func checkRequestIDs(t *testing.T, h *harness, env *Environment, n int) {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = newReqID()
		wg.Go(func() {
			r, err := env.Invoke(context.Background(), Invocation{RequestID: ids[i], Payload: []byte(fmt.Sprintf(`{"n":%d,"wait":200}`, i))})
			if err != nil || r.FunctionError != "" {
				t.Errorf("invocation %d: %v %s", i, err, r.Payload)
			}
		})
	}
	wg.Wait()
	seen := 0
	for _, rec := range appRecords(t, h.logs.text(), func(l string) bool { return !strings.HasPrefix(l, "{") }) {
		msg, _ := rec.Message.(string)
		var word string
		var i int
		if _, err := fmt.Sscanf(msg, "%s %d", &word, &i); err != nil || (word != "log" && word != "after" && word != "info") || i < 0 || i >= n {
			continue
		}
		seen++
		if rec.RequestID != ids[i] {
			t.Errorf("%q logged by %s carries %s", msg, ids[i], rec.RequestID)
		}
	}
	if seen != 2*n {
		t.Errorf("%d records of %d invocations:\n%s", seen, n, h.logs.text())
	}
}

// On a multi-slot environment each invocation that asks for its tail gets its
// own lines and platform records, not those of the invocations beside it: by
// the "requestId" of a JSON record, or the id field of a text line.
func TestMultiSlotTails(t *testing.T) {
	needTool(t, "node")
	for _, format := range []string{"JSON", "Text"} {
		t.Run(format, func(t *testing.T) {
			h := newHarness(t)
			dir := writeCode(t, map[string]string{"index.js": nodeLogCode})
			spec := multiSpec(nodeSpec("nodetails", "index.logs", dir), 3)
			if format == "JSON" {
				spec = jsonSpec(spec, "INFO", "INFO")
			}
			env := h.start(spec)
			const n = 3
			ids := make([]string, n)
			tails := make([]string, n)
			var wg sync.WaitGroup
			for i := range ids {
				ids[i] = newReqID()
				wg.Go(func() {
					r, err := env.Invoke(context.Background(), Invocation{RequestID: ids[i], TailLog: true,
						Payload: []byte(fmt.Sprintf(`{"n":%d,"wait":200}`, i))})
					if err != nil || r.FunctionError != "" {
						t.Errorf("invocation %d: %v %s", i, err, r.Payload)
					}
					tails[i] = string(r.LogTail)
				})
			}
			wg.Wait()
			for i, tail := range tails {
				for _, want := range []string{"log " + strconv.Itoa(i), "after " + strconv.Itoa(i)} {
					if !strings.Contains(tail, want) {
						t.Errorf("tail of invocation %d lacks %q:\n%s", i, want, tail)
					}
				}
				for _, line := range strings.Split(strings.TrimSpace(tail), "\n") {
					for j, other := range ids {
						if j != i && strings.Contains(line, other) {
							t.Errorf("tail of invocation %d holds a line of invocation %d: %s", i, j, line)
						}
					}
					if !strings.Contains(line, ids[i]) && !strings.Contains(line, "RangeError") && !strings.HasPrefix(line, "    at ") {
						t.Errorf("tail of invocation %d holds a line without its id: %q", i, line)
					}
				}
				start, report := `"type":"platform.start"`, `"type":"platform.report"`
				if format == "Text" {
					start, report = "START RequestId: "+ids[i], "REPORT RequestId: "+ids[i]
				}
				if !strings.Contains(tail, start) || !strings.Contains(tail, report) {
					t.Errorf("tail of invocation %d lacks its platform records:\n%s", i, tail)
				}
			}
		})
	}
}
