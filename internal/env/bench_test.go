package env

import (
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"syscall"

	"bytes"
	"context"
	"github.com/shoal-dev/shoal/internal/sandbox"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// benchSpec gives the function one vCPU (1769 MB), as Lambda does.
func benchSpec() Spec {
	s := goSpec("bench")
	s.MemoryMB = 1769
	s.Timeout = 30 * time.Second
	return s
}

// BenchmarkWarmInvoke measures warm invokes of an aws-lambda-go echo
// function through the agent, one at a time (one client).
func BenchmarkWarmInvoke(b *testing.B) {
	h := newHarness(b)
	h.deps.Logs = nil
	env := h.start(benchSpec())
	payload := []byte(`{"hello":"world"}`)
	ctx := context.Background()
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "00000000-0000-4000-8000-" + strconv.Itoa(100000000000+i)
	}
	b.ReportAllocs()
	fn0, self0 := env.box.CPUTime(), selfCPU()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r, err := env.Invoke(ctx, Invocation{RequestID: ids[i%len(ids)], Payload: payload})
		if err != nil || r.FunctionError != "" {
			b.Fatalf("invoke: %v %s", err, r.Payload)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "invokes/s")
	// CPU per invocation is steadier than throughput on a shared machine.
	b.ReportMetric(float64((selfCPU()-self0).Microseconds())/float64(b.N), "platform-cpu-µs/op")
	if fn := env.box.CPUTime() - fn0; fn > 0 {
		b.ReportMetric(float64(fn.Microseconds())/float64(b.N), "function-cpu-µs/op")
	}
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPlainHTTPEcho is the reference: a plain net/http server that
// decodes and re-encodes the same JSON, called by one client.
func BenchmarkPlainHTTPEcho(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c := &http.Client{}
	u := "http://" + ln.Addr().String() + "/"
	payload := []byte(`{"hello":"world"}`)
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Post(u, "application/json", bytes.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkColdStart measures Start → first response of the Go function.
func BenchmarkColdStart(b *testing.B) { benchColdStart(b, false) }

// BenchmarkColdStartIsolated adds namespaces, the unprivileged user and
// private mounts (root only).
func BenchmarkColdStartIsolated(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("isolation needs root")
	}
	benchColdStart(b, true)
}

func benchColdStart(b *testing.B, isolate bool) {
	h := newHarness(b)
	h.deps.Logs = nil
	spec := benchSpec()
	spec.Isolate = isolate
	ctx := context.Background()
	var initTotal time.Duration
	for b.Loop() {
		env, err := Start(ctx, spec, h.deps)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := env.Invoke(ctx, Invocation{RequestID: "cold", Payload: []byte(`{}`)}); err != nil {
			b.Fatal(err)
		}
		initTotal += env.InitDuration()
		b.StopTimer()
		_ = env.Close(ctx)
		b.StartTimer()
	}
	b.ReportMetric(float64(initTotal.Microseconds())/float64(b.N)/1000, "init-ms/op")
}

// plainBox runs the runtime as a plain child process: no cgroup, no
// namespaces. Benchmarks use it to separate the sandbox's cost.
type plainBox struct {
	cfg sandbox.Config
	cmd *exec.Cmd
}

func plainSandboxes(cfg sandbox.Config, _ *slog.Logger) (Sandbox, error) {
	return &plainBox{cfg: cfg}, nil
}

func (p *plainBox) Start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd = cmd
	return cmd.Start()
}
func (p *plainBox) TaskRoot() string           { return p.cfg.CodeDir }
func (p *plainBox) RuntimeRoot() string        { return p.cfg.RuntimeDir }
func (p *plainBox) OptRoot() string            { return "/opt" }
func (p *plainBox) TmpDir() string             { return p.cfg.TmpDir }
func (p *plainBox) MaxMemoryUsedBytes() uint64 { return 0 }
func (p *plainBox) OOMKilled() bool            { return false }
func (p *plainBox) CPUTime() time.Duration     { return 0 }
func (p *plainBox) CgroupPath() string         { return "" }
func (p *plainBox) Limited() string            { return "plain process" }
func (p *plainBox) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}
func (p *plainBox) Kill() error {
	if pid := p.Pid(); pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	return nil
}
func (p *plainBox) Close() error { return p.Kill() }

// BenchmarkWarmInvokePlainProcess is BenchmarkWarmInvoke without the sandbox.
func BenchmarkWarmInvokePlainProcess(b *testing.B) {
	h := newHarness(b)
	h.deps.Logs = nil
	h.deps.Sandboxes = plainSandboxes
	env := h.start(benchSpec())
	payload := []byte(`{"hello":"world"}`)
	ctx := context.Background()
	for b.Loop() {
		if _, err := env.Invoke(ctx, Invocation{RequestID: "00000000-0000-4000-8000-000000000001", Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "invokes/s")
}

// BenchmarkColdStartPlainProcess is BenchmarkColdStart without the sandbox.
func BenchmarkColdStartPlainProcess(b *testing.B) {
	h := newHarness(b)
	h.deps.Logs = nil
	h.deps.Sandboxes = plainSandboxes
	spec := benchSpec()
	ctx := context.Background()
	for b.Loop() {
		env, err := Start(ctx, spec, h.deps)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := env.Invoke(ctx, Invocation{RequestID: "cold", Payload: []byte(`{}`)}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = env.Close(ctx)
		b.StartTimer()
	}
}

// BenchmarkWarmInvokeMultiSlot measures one 8-slot environment (Managed
// Instances style, AWS_LAMBDA_MAX_CONCURRENCY=8) driven by 8 callers.
func BenchmarkWarmInvokeMultiSlot(b *testing.B) {
	h := newHarness(b)
	h.deps.Logs = nil
	spec := benchSpec()
	spec.MaxConcurrency = 8
	spec.InitType = InitManagedInstances
	env := h.start(spec)
	payload := []byte(`{"hello":"world"}`)
	var seq atomic.Int64
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			id := "00000000-0000-4000-8000-" + strconv.FormatInt(200000000000+seq.Add(1), 10)
			r, err := env.Invoke(ctx, Invocation{RequestID: id, Payload: payload})
			if err != nil || r.FunctionError != "" {
				b.Errorf("invoke: %v %s", err, r.Payload)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "invokes/s")
}

// BenchmarkWarmInvokeNode and BenchmarkWarmInvokePython measure warm
// invokes of an echo handler through shoal's bootstraps (one vCPU).
func BenchmarkWarmInvokeNode(b *testing.B) {
	needTool(b, "node")
	benchHandler(b, nodeSpec("benchnode", "index.handler",
		writeCode(b, map[string]string{"index.mjs": "export const handler = async (e) => e;"})))
}

func BenchmarkWarmInvokePython(b *testing.B) {
	needTool(b, "python3")
	benchHandler(b, pySpec("benchpy", "app.handler",
		writeCode(b, map[string]string{"app.py": "def handler(e, c):\n    return e\n"})))
}

func benchHandler(b *testing.B, spec Spec) {
	h := newHarness(b)
	h.deps.Logs = nil
	env := h.start(spec)
	payload := []byte(`{"hello":"world"}`)
	ctx := context.Background()
	for b.Loop() {
		r, err := env.Invoke(ctx, Invocation{RequestID: "00000000-0000-4000-8000-000000000009", Payload: payload})
		if err != nil || r.FunctionError != "" {
			b.Fatalf("invoke: %v %s", err, r.Payload)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "invokes/s")
	b.ReportMetric(float64(env.InitDuration().Microseconds())/1000, "init-ms")
}

// BenchmarkHTTPFrontInvoke is BenchmarkPlainHTTPEcho's client and server
// with the server's handler invoking the aws-lambda-go echo function through
// the agent: the in-process invoke path (front → Runtime API → function),
// comparable with BenchmarkPlainHTTPEcho run alongside.
func BenchmarkHTTPFrontInvoke(b *testing.B) {
	h := newHarness(b)
	h.deps.Logs = nil
	env := h.start(benchSpec())
	var seq atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := "00000000-0000-4000-8000-" + strconv.FormatInt(300000000000+seq.Add(1), 10)
		res, err := env.Invoke(r.Context(), Invocation{RequestID: id, Payload: body})
		if err != nil {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(res.Payload)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c := &http.Client{}
	u := "http://" + ln.Addr().String() + "/"
	payload := []byte(`{"hello":"world"}`)
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Post(u, "application/json", bytes.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
