package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/poll"
)

// invokeAll runs n invocations at once and returns their results.
func invokeAll(t *testing.T, env *Environment, n int, payload string) []Result {
	t.Helper()
	res := make([]Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = env.Invoke(context.Background(), Invocation{RequestID: newReqID(), Payload: []byte(payload), TailLog: true})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("invocation %d: %v", i, err)
		}
	}
	return res
}

func multiSpec(s Spec, n int) Spec {
	s.MaxConcurrency = n
	s.InitType = "lambda-managed-instances"
	s.MemoryMB = 2048
	s.CPUs = 1
	s.Timeout = 20 * time.Second
	return s
}

// Three invocations are inside the Go function at once on a 3-slot
// environment (each waits until it sees the other two); a fourth is refused.
func TestGoMultiSlot(t *testing.T) {
	h := newHarness(t)
	env := h.start(multiSpec(goSpec("multi"), 3))
	if env.Slots() != 3 {
		t.Fatalf("Slots = %d", env.Slots())
	}
	r := invoke(t, env, `{"mode":"context"}`, false)
	if !strings.Contains(string(r.Payload), `"AWS_LAMBDA_MAX_CONCURRENCY":"3"`) ||
		!strings.Contains(string(r.Payload), `"AWS_LAMBDA_INITIALIZATION_TYPE":"lambda-managed-instances"`) {
		t.Errorf("environment: %s", r.Payload)
	}

	// The barrier opens only once all three are inside the function.
	for _, r := range invokeAll(t, env, 3, `{"mode":"barrier","n":3}`) {
		if string(r.Payload) != "3" || r.Replace {
			t.Errorf("barrier result %+v", r)
		}
		lines := strings.Split(strings.TrimSpace(string(r.LogTail)), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "START") || !strings.HasPrefix(lines[2], "REPORT") {
			t.Errorf("multi-slot tail:\n%s", r.LogTail)
		}
	}
}

func TestGoMultiSlotBusy(t *testing.T) {
	h := newHarness(t)
	env := h.start(multiSpec(goSpec("multibusy"), 2))
	done := make(chan []Result, 1)
	go func() { done <- invokeAll(t, env, 2, `{"mode":"barrier","n":3}`) }()
	poll.Until(t, 10*time.Second, func() error {
		if n := env.InFlight(); n != 2 {
			return fmt.Errorf("%d in flight", n)
		}
		return nil
	})
	if _, err := env.Invoke(context.Background(), Invocation{RequestID: newReqID(), Payload: []byte(`{}`)}); !errors.Is(err, ErrBusy) {
		t.Fatalf("third invocation on two slots: %v, want ErrBusy", err)
	}
	// Open the barrier from outside (the environment's /tmp): both finish.
	if err := os.WriteFile(filepath.Join(env.dir, "tmp", "barrier-outside"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range <-done {
		if string(r.Payload) != "3" {
			t.Errorf("result %+v", r)
		}
	}
}

// On a Managed Instances environment a timeout fails only that invocation, with
// one slot as with several (a classic environment is replaced), and the first
// REPORT has no Init Duration: the environment was initialised ahead of demand.
func TestGoMultiSlotTimeout(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			h := newHarness(t)
			spec := multiSpec(goSpec(fmt.Sprintf("multitimeout%d", n)), n)
			spec.Timeout = time.Second
			env := h.start(spec)
			r := invoke(t, env, `{"mode":"sleep","sleepMs":3000}`, true)
			if r.ErrorType != "Sandbox.Timedout" || r.Replace {
				t.Fatalf("error type %q, replace the environment %v; want Sandbox.Timedout, false", r.ErrorType, r.Replace)
			}
			if r.InitDuration != 0 || strings.Contains(string(r.LogTail), "Init Duration") {
				t.Errorf("first invocation reports an init: %v\n%s", r.InitDuration, r.LogTail)
			}
			// It serves on: at once on another slot, or, with one slot, once the
			// code that overran is done with it.
			poll.Until(t, 10*time.Second, func() error {
				if k := env.InFlight(); k >= n {
					return fmt.Errorf("%d of %d slots in flight", k, n)
				}
				return nil
			})
			if r := invoke(t, env, `"still here"`, false); string(r.Payload) != `"still here"` {
				t.Errorf("after timeout: %+v", r)
			}
			select {
			case <-env.Done():
				t.Fatal("environment ended after a single timeout")
			default:
			}
		})
	}
}

func TestNodeMultiSlot(t *testing.T) {
	needTool(t, "node")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"index.mjs": `
let inside = 0;
const waiters = [];
export const handler = async (event) => {
  inside++;
  if (inside >= event.n) { waiters.splice(0).forEach((w) => w()); }
  else { await new Promise((r) => waiters.push(r)); }
  return { concurrency: process.env.AWS_LAMBDA_MAX_CONCURRENCY };
};`})
	env := h.start(multiSpec(nodeSpec("nodemulti", "index.handler", dir), 4))
	for _, r := range invokeAll(t, env, 4, `{"n":4}`) {
		if string(r.Payload) != `{"concurrency":"4"}` {
			t.Errorf("result %+v", r)
		}
	}
}

func TestPythonMultiSlot(t *testing.T) {
	needTool(t, "python3")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"app.py": `
import glob, os, tempfile, time
def handler(event, context):
    d = tempfile.gettempdir()
    open(os.path.join(d, "in-" + context.aws_request_id), "w").close()
    while len(glob.glob(os.path.join(d, "in-*"))) < event["n"]:
        time.sleep(0.002)
    for _ in range(50):
        print("line-" + context.aws_request_id[-1] * 2000)
    return {"pid": os.getpid()}
`})
	env := h.start(multiSpec(pySpec("pymulti", "app.handler", dir), 3))
	pids := map[string]bool{}
	for _, r := range invokeAll(t, env, 3, `{"n":3}`) {
		if r.FunctionError != "" {
			t.Fatalf("result %+v %s", r, r.Payload)
		}
		pids[string(r.Payload)] = true
	}
	if len(pids) != 3 {
		t.Errorf("3 concurrent invocations ran in %d processes, want 3", len(pids))
	}
	// The workers' lines reach the log whole, never interleaved.
	lines := 0
	for _, l := range strings.Split(h.logs.text(), "\n") {
		if !strings.HasPrefix(l, "line-") {
			continue
		}
		lines++
		if len(l) != 2005 || strings.Count(l, l[5:6]) != 2000 {
			t.Fatalf("mangled line (%d bytes): %.80q…", len(l), l)
		}
	}
	if lines != 150 {
		t.Errorf("%d lines, want 150", lines)
	}
}

// A Python worker process that dies fails only its invocation; the
// environment serves on with the other workers and a replacement.
func TestPythonMultiSlotWorkerCrash(t *testing.T) {
	needTool(t, "python3")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"app.py": `
import os
def handler(event, context):
    if event.get("die"):
        os._exit(3)
    return {"pid": os.getpid()}
`})
	env := h.start(multiSpec(pySpec("pycrash", "app.handler", dir), 2))
	id := newReqID()
	r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(`{"die":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r.ErrorType != "Runtime.ExitError" || r.Replace {
		t.Fatalf("result %+v %s", r, r.Payload)
	}
	if want := "RequestId: " + id + " Error: Runtime exited without providing a reason"; decodeErr(t, r.Payload).ErrorMessage != want {
		t.Errorf("payload %s", r.Payload)
	}
	for range 4 {
		if r := invoke(t, env, `{}`, false); r.FunctionError != "" {
			t.Fatalf("after the crash: %+v %s", r, r.Payload)
		}
	}
}
