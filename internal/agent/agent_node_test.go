package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
