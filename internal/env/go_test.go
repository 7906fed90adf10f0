package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/poll"
)

func TestGoEcho(t *testing.T) {
	h := newHarness(t)
	spec := goSpec("echo")
	spec.CPUs = 0 // Lambda's share for 128 MB
	env := h.start(spec)
	if env.InitDuration() <= 0 {
		t.Errorf("InitDuration = %v", env.InitDuration())
	}
	r := invoke(t, env, `{"hello":"world"}`, true)
	if string(r.Payload) != `{"hello":"world"}` || r.FunctionError != "" {
		t.Fatalf("result = %q %q", r.Payload, r.FunctionError)
	}
	if r.InitDuration <= 0 {
		t.Errorf("first invoke InitDuration = %v, want > 0", r.InitDuration)
	}
	if r.BilledDuration < r.Duration || r.BilledDuration%time.Millisecond != 0 {
		t.Errorf("billed %v for %v", r.BilledDuration, r.Duration)
	}
	r2 := invoke(t, env, `[1,2]`, true)
	if string(r2.Payload) != `[1,2]` || r2.InitDuration != 0 {
		t.Errorf("second invoke: %q init %v", r2.Payload, r2.InitDuration)
	}
	if r2.Replace {
		t.Error("Replace on a good invoke")
	}
	if strings.Contains(string(r2.LogTail), "Init Duration") {
		t.Errorf("warm REPORT carries Init Duration:\n%s", r2.LogTail)
	}
}

func TestGoLogTail(t *testing.T) {
	h := newHarness(t)
	env := h.start(goSpec("logs"))
	id := newReqID()
	r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(`{"mode":"log"}`), TailLog: true})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(r.LogTail), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("tail has %d lines:\n%s", len(lines), r.LogTail)
	}
	if lines[0] != "START RequestId: "+id+" Version: $LATEST" {
		t.Errorf("START line %q", lines[0])
	}
	body := strings.Join(lines[1:3], "\n")
	if !strings.Contains(body, "hello from the function") || !strings.Contains(body, "and from stderr") {
		t.Errorf("function output missing between START and END:\n%s", r.LogTail)
	}
	if lines[3] != "END RequestId: "+id {
		t.Errorf("END line %q", lines[3])
	}
	report := regexp.MustCompile(`^REPORT RequestId: ` + id + `\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms\t$`)
	if !report.MatchString(lines[4]) {
		t.Errorf("REPORT line %q", lines[4])
	}
	if r.MaxMemoryUsedMB <= 0 {
		t.Errorf("MaxMemoryUsedMB = %d", r.MaxMemoryUsedMB)
	}
	// The sink got the same lines, tagged with the function.
	if !strings.Contains(h.logs.text(), "hello from the function\n") {
		t.Errorf("sink misses the function's line:\n%s", h.logs.text())
	}
	h.logs.mu.Lock()
	rec := h.logs.lines[0]
	h.logs.mu.Unlock()
	if rec.Function != "logs" || rec.Version != "$LATEST" || rec.Stream == "" || rec.Time.IsZero() {
		t.Errorf("record = %+v", rec)
	}
}

func TestGoFunctionError(t *testing.T) {
	h := newHarness(t)
	env := h.start(goSpec("err"))
	r := invoke(t, env, `{"mode":"error"}`, false)
	if r.FunctionError != "Unhandled" || r.ErrorType != "myError" || r.Replace {
		t.Fatalf("result = %+v", r)
	}
	e := decodeErr(t, r.Payload)
	if e.ErrorType != "myError" || e.ErrorMessage != "it failed" {
		t.Errorf("payload %s", r.Payload)
	}
	// The environment keeps serving.
	if r := invoke(t, env, `"again"`, false); string(r.Payload) != `"again"` {
		t.Errorf("after error: %q", r.Payload)
	}
}

func TestGoContextAndHeaders(t *testing.T) {
	h := newHarness(t)
	spec := goSpec("ctx")
	spec.Environment = map[string]string{"USERVAR": "v1", "AWS_REGION": "user-cannot-override"}
	spec.Region = "eu-west-1"
	env := h.start(spec)
	id := newReqID()
	cc := `{"custom":{"k":"v"},"client":{"installation_id":"inst"}}`
	r, err := env.Invoke(context.Background(), Invocation{
		RequestID: id, Payload: []byte(`{"mode":"context"}`),
		InvokedARN:      spec.FunctionARN + ":prod",
		ClientContext:   cc,
		CognitoIdentity: `{"cognitoIdentityId":"cid","cognitoIdentityPoolId":"pool"}`,
		TraceID:         "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RequestID     string `json:"requestId"`
		ARN           string `json:"arn"`
		ClientContext struct {
			Client struct {
				InstallationID string `json:"installation_id"`
			} `json:"Client"`
			Custom map[string]string `json:"custom"`
		} `json:"clientContext"`
		Identity struct {
			CognitoIdentityID     string `json:"CognitoIdentityID"`
			CognitoIdentityPoolID string `json:"CognitoIdentityPoolID"`
		} `json:"identity"`
		TraceID      string            `json:"traceId"`
		DeadlineSet  bool              `json:"deadlineSet"`
		FunctionName string            `json:"functionName"`
		Memory       int               `json:"memory"`
		Env          map[string]string `json:"env"`
	}
	if err := json.Unmarshal(r.Payload, &got); err != nil {
		t.Fatalf("%v: %s", err, r.Payload)
	}
	checks := []struct{ name, got, want string }{
		{"request id", got.RequestID, id},
		{"invoked arn", got.ARN, spec.FunctionARN + ":prod"},
		{"client context custom", got.ClientContext.Custom["k"], "v"},
		{"client context installation", got.ClientContext.Client.InstallationID, "inst"},
		{"cognito id", got.Identity.CognitoIdentityID, "cid"},
		{"cognito pool", got.Identity.CognitoIdentityPoolID, "pool"},
		{"trace id", got.TraceID, "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"},
		{"function name", got.FunctionName, "ctx"},
		{"region", got.Env["AWS_REGION"], "eu-west-1"},
		{"TZ", got.Env["TZ"], ":UTC"},
		{"handler", got.Env["_HANDLER"], "bootstrap"},
		{"execution env", got.Env["AWS_EXECUTION_ENV"], "AWS_Lambda_provided.al2023"},
		{"user var", got.Env["USERVAR"], "v1"},
		{"max concurrency absent", got.Env["AWS_LAMBDA_MAX_CONCURRENCY"], ""},
		{"init type", got.Env["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !got.DeadlineSet || got.Memory != 128 {
		t.Errorf("deadline %v memory %d", got.DeadlineSet, got.Memory)
	}
}

func TestGoTimeout(t *testing.T) {
	h := newHarness(t)
	spec := goSpec("slow")
	spec.Timeout = time.Second
	env := h.start(spec)
	id := newReqID()
	r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(`{"mode":"sleep","sleepMs":60000}`), TailLog: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Replace || r.FunctionError != "Unhandled" || r.ErrorType != "Sandbox.Timedout" {
		t.Fatalf("result = %+v", r)
	}
	e := decodeErr(t, r.Payload)
	if want := "RequestId: " + id + " Error: Task timed out after 1.00 seconds"; e.ErrorMessage != want || e.ErrorType != "Sandbox.Timedout" {
		t.Errorf("payload %s", r.Payload)
	}
	if !strings.Contains(string(r.LogTail), id+" Task timed out after 1.00 seconds") ||
		!strings.Contains(string(r.LogTail), "\tStatus: timeout\t\n") {
		t.Errorf("tail:\n%s", r.LogTail)
	}
	select {
	case <-env.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("timed-out environment did not end")
	}
	if _, err := env.Invoke(context.Background(), Invocation{RequestID: newReqID()}); !errors.Is(err, ErrClosed) {
		t.Errorf("invoke after replace: %v", err)
	}
	// A new environment works.
	env2 := h.start(spec)
	if r := invoke(t, env2, `"ok"`, false); string(r.Payload) != `"ok"` {
		t.Errorf("new environment: %q", r.Payload)
	}
}

func TestGoCrash(t *testing.T) {
	h := newHarness(t)
	env := h.start(goSpec("crash"))
	id := newReqID()
	r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(`{"mode":"exit"}`), TailLog: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Replace || r.ErrorType != "Runtime.ExitError" {
		t.Fatalf("result = %+v", r)
	}
	e := decodeErr(t, r.Payload)
	if want := "RequestId: " + id + " Error: Runtime exited with error: exit status 1"; e.ErrorMessage != want {
		t.Errorf("message %q, want %q", e.ErrorMessage, want)
	}
	if !strings.Contains(string(r.LogTail), "exiting now") ||
		!strings.Contains(string(r.LogTail), "\tStatus: error\tError Type: Runtime.ExitError\t\n") {
		t.Errorf("tail misses the function's last words:\n%s", r.LogTail)
	}
	<-env.Done()
}

func TestGoInitPanic(t *testing.T) {
	h := newHarness(t)
	spec := goSpec("initpanic")
	spec.Environment = map[string]string{"INIT_PANIC": "1"}
	_, err := Start(context.Background(), spec, h.deps)
	var ie *InitError
	if !errors.As(err, &ie) {
		t.Fatalf("Start: %v, want *InitError", err)
	}
	if ie.ErrorType != "Runtime.ExitError" || ie.Message != "Runtime exited with error: exit status 2" {
		t.Errorf("init error %+v", ie)
	}
	e := decodeErr(t, ie.ForRequest("rid-1"))
	if e.ErrorMessage != "RequestId: rid-1 Error: Runtime exited with error: exit status 2" {
		t.Errorf("ForRequest: %s", ie.ForRequest("rid-1"))
	}
	if !strings.Contains(string(ie.Log), "init went wrong") {
		t.Errorf("init log:\n%s", ie.Log)
	}
	entries, _ := os.ReadDir(h.deps.WorkDir)
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), "env-") {
			t.Errorf("environment dir %s left behind", en.Name())
		}
	}
}

func TestGoMissingBootstrap(t *testing.T) {
	h := newHarness(t)
	spec := goSpec("nobootstrap")
	spec.CodeDir = t.TempDir()
	_, err := Start(context.Background(), spec, h.deps)
	var ie *InitError
	if !errors.As(err, &ie) || ie.ErrorType != "Runtime.InvalidEntrypoint" {
		t.Fatalf("Start: %v", err)
	}
	if !strings.Contains(ie.Message, "Couldn't find valid bootstrap(s): [") {
		t.Errorf("message %q", ie.Message)
	}
	// A bootstrap that is not executable.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec.CodeDir = dir
	_, err = Start(context.Background(), spec, h.deps)
	if !errors.As(err, &ie) || ie.ErrorType != "Runtime.InvalidEntrypoint" {
		t.Fatalf("Start: %v", err)
	}
}

func TestGoBusyAndCancel(t *testing.T) {
	h := newHarness(t)
	env := h.start(goSpec("busy"))
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := env.Invoke(ctx, Invocation{RequestID: newReqID(), Payload: []byte(`{"mode":"sleep","sleepMs":300}`)})
		first <- err
	}()
	poll.Until(t, 5*time.Second, func() error {
		if env.InFlight() != 1 {
			return errors.New("first invocation not in flight")
		}
		return nil
	})
	if _, err := env.Invoke(context.Background(), Invocation{RequestID: newReqID()}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second invoke on a busy environment: %v, want ErrBusy", err)
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled invoke: %v", err)
	}
	// The runtime's late answer is accepted (aws-lambda-go would exit on
	// anything but 202) and the slot frees up.
	poll.Until(t, 5*time.Second, func() error {
		if env.InFlight() != 0 {
			return errors.New("slot still taken")
		}
		return nil
	})
	if r := invoke(t, env, `"after"`, false); string(r.Payload) != `"after"` {
		t.Errorf("after cancel: %q", r.Payload)
	}
}

func TestGoClose(t *testing.T) {
	h := newHarness(t)
	env := h.start(goSpec("close"))
	res := make(chan Result, 1)
	go func() {
		r, _ := env.Invoke(context.Background(), Invocation{RequestID: newReqID(), Payload: []byte(`{"mode":"sleep","sleepMs":200}`)})
		res <- r
	}()
	poll.Until(t, 5*time.Second, func() error {
		if env.InFlight() != 1 {
			return errors.New("not in flight")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-res; string(r.Payload) != `"slept"` {
		t.Errorf("in-flight invocation during Close: %+v", r)
	}
	if err := env.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestGoOutOfMemory(t *testing.T) {
	h := newHarness(t)
	spec := goSpec("oom")
	spec.Timeout = 30 * time.Second
	env := h.start(spec)
	// Warm up so the memory cgroup has a reading, then check it exists.
	invoke(t, env, `"warm"`, false)
	if env.box.MaxMemoryUsedBytes() == 0 {
		t.Skipf("no memory cgroup for the sandbox (%s)", env.Limited())
	}
	id := newReqID()
	r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(`{"mode":"oom","mb":400}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Replace || r.ErrorType != "Runtime.OutOfMemory" || r.FunctionError != "Unhandled" {
		t.Fatalf("result = %+v, payload %s", r, r.Payload)
	}
	e := decodeErr(t, r.Payload)
	if want := "RequestId: " + id + " Error: Runtime exited with error: signal: killed"; e.ErrorMessage != want {
		t.Errorf("message %q, want %q", e.ErrorMessage, want)
	}
}

// aws-lambda-go sends every response chunked with trailers; a handler that
// returns an io.Reader streams it, and a reader that fails is reported in
// the Lambda-Runtime-Function-Error-* trailers.
func TestGoStreamedResponse(t *testing.T) {
	h := newHarness(t)
	env := h.start(goSpec("stream"))
	r := invoke(t, env, `{"mode":"stream"}`, false)
	if string(r.Payload) != strings.Repeat("chunk ", 5000) || r.FunctionError != "" {
		t.Fatalf("streamed: %d bytes, error %q", len(r.Payload), r.FunctionError)
	}
	r = invoke(t, env, `{"mode":"streamfail"}`, false)
	if r.FunctionError != "Unhandled" || r.ErrorType == "" {
		t.Fatalf("failed stream: %+v %s", r, r.Payload)
	}
	if !strings.Contains(string(r.Payload), "stream broke") {
		t.Errorf("payload %s", r.Payload)
	}
	if r := invoke(t, env, `"after"`, false); string(r.Payload) != `"after"` {
		t.Errorf("after: %s", r.Payload)
	}
}

// TestGoLargeErrors: aws-lambda-go reports a failed stream in a base64
// trailer line and any error's X-Ray cause in a header line, both longer
// than 4 KB for a long message; each ends as the function error it is, not
// as a timeout, up to the Runtime API's 16 KiB line limit.
func TestGoLargeErrors(t *testing.T) {
	h := newHarness(t)
	spec := goSpec("bigerrors")
	spec.Timeout = 10 * time.Second
	env := h.start(spec)
	for _, c := range []struct {
		mode string
		n    int
	}{{"streamfailbig", 6000}, {"streamfailbig", 11000}, {"errorbig", 6000}, {"errorbig", 14000}} {
		t.Run(fmt.Sprintf("%s %d", c.mode, c.n), func(t *testing.T) {
			r := invoke(t, env, fmt.Sprintf(`{"mode":%q,"n":%d}`, c.mode, c.n), false)
			if r.FunctionError != "Unhandled" || r.ErrorType == "Sandbox.Timedout" || r.ErrorType == "Runtime.ExitError" {
				t.Fatalf("result %+v %.200s", r, r.Payload)
			}
			if e := decodeErr(t, r.Payload); len(e.ErrorMessage) != c.n {
				t.Errorf("errorMessage of %d bytes (type %s), want %d", len(e.ErrorMessage), e.ErrorType, c.n)
			}
		})
	}
	if r := invoke(t, env, `"after"`, false); string(r.Payload) != `"after"` {
		t.Errorf("after: %s", r.Payload)
	}
}

// TestGoInvokeAfterPanic: aws-lambda-go ends its process after it reports a
// panic. An invocation given to the environment right after is never taken
// by the runtime, so Invoke answers ErrClosed (its caller places it on
// another environment) instead of failing it, and this environment's log
// holds no trace of it.
func TestGoInvokeAfterPanic(t *testing.T) {
	h := newHarness(t)
	for range 5 {
		env := h.start(goSpec("panic"))
		r := invoke(t, env, `{"mode":"panic"}`, false)
		if r.FunctionError != "Unhandled" || !strings.Contains(string(r.Payload), "handler panicked") {
			t.Fatalf("panic result = %+v %s", r, r.Payload)
		}
		next := newReqID()
		_, err := env.Invoke(context.Background(), Invocation{RequestID: next, Payload: []byte(`"after"`)})
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("invoke after the panic: %v, want ErrClosed", err)
		}
		<-env.Done()
		if log := h.logs.text(); strings.Contains(log, next) {
			t.Fatalf("the invocation that was never taken left lines in the log:\n%s", log)
		}
	}
}
