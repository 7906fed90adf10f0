package env

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/logs"
)

// goFnDir holds the aws-lambda-go test function (testdata/gofn) as a
// provided-runtime package: CODE/bootstrap.
var goFnDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shoal-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by the unprivileged user of isolated sandboxes.
	_ = os.Chmod(dir, 0o755)
	goFnDir = filepath.Join(dir, "gofn")
	cmd := exec.Command("go", "build", "-o", filepath.Join(goFnDir, "bootstrap"), "./testdata/gofn")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the test function: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// memLogs is a LogSink that keeps every line.
type memLogs struct {
	mu    sync.Mutex
	lines []logs.Record
}

func (m *memLogs) WriteLog(r logs.Record) {
	m.mu.Lock()
	m.lines = append(m.lines, r)
	m.mu.Unlock()
}

func (m *memLogs) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, l := range m.lines {
		b.WriteString(l.Message)
		b.WriteByte('\n')
	}
	return b.String()
}

func goSpec(name string) Spec {
	return Spec{
		FunctionName: name,
		FunctionARN:  "arn:aws:lambda:us-east-1:123456789012:function:" + name,
		Version:      "$LATEST",
		Runtime:      "provided.al2023",
		Handler:      "bootstrap",
		MemoryMB:     128,
		CPUs:         1, // not 128 MB's 0.07 vCPU: keeps the suite fast on a shared machine
		Timeout:      3 * time.Second,
		CodeDir:      goFnDir,
		AccountID:    "123456789012",
		LogStream:    "2026/11/26/[$LATEST]0123456789abcdef0123456789abcdef",
	}
}

type harness struct {
	t    testing.TB
	logs *memLogs
	deps Deps
}

func newHarness(t testing.TB) *harness {
	logs := &memLogs{}
	return &harness{t: t, logs: logs, deps: Deps{
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Logs:    logs,
		WorkDir: t.TempDir(),
	}}
}

func (h *harness) start(spec Spec) *Environment {
	return h.startT(h.t, spec)
}

func (h *harness) startT(t testing.TB, spec Spec) *Environment {
	t.Helper()
	env, err := Start(context.Background(), spec, h.deps)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := env.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return env
}

var reqSeq struct {
	sync.Mutex
	n int
}

func newReqID() string {
	reqSeq.Lock()
	defer reqSeq.Unlock()
	reqSeq.n++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", reqSeq.n)
}

func invoke(t testing.TB, env *Environment, payload string, tail bool) Result {
	t.Helper()
	r, err := env.Invoke(context.Background(), Invocation{RequestID: newReqID(), Payload: []byte(payload), TailLog: tail})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	return r
}

// invokeTail invokes env with a fresh request id, asking for the log tail, and
// returns the id and the result.
func invokeTail(t testing.TB, env *Environment, payload string) (string, Result) {
	t.Helper()
	id := newReqID()
	r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(payload), TailLog: true})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	return id, r
}

// errBody decodes Lambda's error JSON.
type errBody struct {
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	StackTrace   []string `json:"stackTrace"`
	Trace        []string `json:"trace"`
	RequestID    *string  `json:"requestId"`
}

func decodeErr(t testing.TB, b []byte) errBody {
	t.Helper()
	var e errBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error payload %q: %v", b, err)
	}
	return e
}
