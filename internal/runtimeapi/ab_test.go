package runtimeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// The A/B of the hand-written HTTP/1.1 server (http.go, conn.go) and rawio
// against the standard library (docs/decisions/runtime-api-http.md and
// rawio.md). One server core (Submit, take, settle) behind three front ends:
//
//	handwritten-rawio    the server as shoal runs it
//	handwritten-netconn  the same parser, reading and writing through net.Conn
//	net-http             a net/http server with handlers calling the same core
//
// The runtime is the real aws-lambda-go client: this test binary, started
// again as an echo function (TestMain), in its own process as in an
// environment. Run:
//
//	go test -run '^$' -bench RuntimeAPIAB -benchtime 10s -count 3 ./internal/runtimeapi/
//
// ns/op is one invocation end to end (Submit to answer); server-cpu-µs/op
// is this process's CPU (the server and the benchmark's submitters, the
// same in every variant), function-cpu-µs/op the runtime's.

const abFunctionEnv = "SHOAL_RUNTIMEAPI_AB_FUNCTION"

func TestMain(m *testing.M) {
	if os.Getenv(abFunctionEnv) == "1" {
		lambda.Start(func(_ context.Context, ev json.RawMessage) (json.RawMessage, error) { return ev, nil })
		return
	}
	os.Exit(m.Run())
}

func BenchmarkRuntimeAPIAB(b *testing.B) {
	for _, c := range []int{1, 8} {
		for _, variant := range []string{"handwritten-rawio", "handwritten-netconn", "net-http"} {
			b.Run(fmt.Sprintf("%s/c=%d", variant, c), func(b *testing.B) {
				s, addr := startABServer(b, variant, c)
				fn := startABFunction(b, addr, c)
				select {
				case <-s.Ready():
				case <-time.After(30 * time.Second):
					b.Fatal("the function never polled invocation/next")
				}
				runAB(b, s, c, fn)
			})
		}
	}
}

// startABServer starts one front end on the shared core with c slots.
func startABServer(b *testing.B, variant string, c int) (*Server, string) {
	b.Helper()
	switch variant {
	case "handwritten-rawio", "handwritten-netconn":
		s, err := New(Config{Slots: c, plainIO: variant == "handwritten-netconn"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s, s.Addr()
	}
	s := newServer(Config{Slots: c}, discardLogger())
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: netHTTPRuntimeAPI(s)}
	go func() { _ = hs.Serve(ln) }()
	b.Cleanup(func() {
		close(s.closed)
		_ = hs.Close()
	})
	return s, ln.Addr().String()
}

// netHTTPRuntimeAPI serves the endpoints the benchmark uses with net/http,
// on the same core as the hand-written server.
func netHTTPRuntimeAPI(s *Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+invocationPath+"next", func(w http.ResponseWriter, r *http.Request) {
		s.readyOnce.Do(func() { close(s.ready) })
		inv := s.take(r.Context().Done())
		if inv == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set(hdrRequestID, inv.ID)
		h.Set(hdrDeadline, strconv.FormatInt(inv.Deadline.UnixMilli(), 10))
		h.Set(hdrInvokedARN, inv.InvokedARN)
		h.Set("Content-Length", strconv.Itoa(len(inv.Payload)))
		if _, err := w.Write(inv.Payload); err != nil {
			s.requeue(inv)
		}
	})
	mux.HandleFunc("POST "+prefix+invocationPath+"{id}/response", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxResponseBytes+1))
		if err != nil {
			return
		}
		if !s.settle(r.PathValue("id"), Outcome{Payload: body}) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"OK"}`+"\n")
	})
	return mux
}

// startABFunction starts this test binary as an aws-lambda-go echo function
// with c workers, and returns its pid.
func startABFunction(b *testing.B, addr string, c int) int {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), abFunctionEnv+"=1", "AWS_LAMBDA_RUNTIME_API="+addr,
		"AWS_LAMBDA_MAX_CONCURRENCY="+strconv.Itoa(c), "AWS_LAMBDA_FUNCTION_NAME=echo", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=2048", "AWS_REGION=us-east-1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

// runAB sends b.N invocations from c submitters and reports the CPU each
// side spent per invocation.
func runAB(b *testing.B, s *Server, c int, fnPid int) {
	payload := []byte(`{"hello":"world"}`)
	var next atomic.Int64
	var failed atomic.Int64
	invoke := func() {
		inv := &Invocation{ID: "req-" + strconv.FormatInt(next.Add(1), 10), Payload: payload,
			Deadline: time.Now().Add(time.Minute), InvokedARN: "arn:aws:lambda:us-east-1:123456789012:function:echo"}
		if err := s.Submit(inv); err != nil {
			failed.Add(1)
			return
		}
		if o := <-inv.Done(); o.Error || string(o.Payload) != string(payload) {
			failed.Add(1)
		}
	}
	for range 200 { // warm: connections open, pools filled
		invoke()
	}
	self0, fn0 := cpuOf(0), cpuOf(fnPid)
	b.ResetTimer()
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(b.N))
	for range c {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				invoke()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	self, fn := cpuOf(0)-self0, cpuOf(fnPid)-fn0
	b.ReportMetric(float64(self.Microseconds())/float64(b.N), "server-cpu-µs/op")
	b.ReportMetric(float64(fn.Microseconds())/float64(b.N), "function-cpu-µs/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "invocations/s")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d invocations failed", n, b.N)
	}
}

// cpuOf is the user and system CPU time of process pid, 0 meaning this one.
func cpuOf(pid int) time.Duration {
	if pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which ends with the last ')': utime
	// and stime are the 12th and 13th, in clock ticks of 100 Hz.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
