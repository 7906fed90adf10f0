package bench

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/wire"
)

// BenchmarkWireRoundTrip measures invocations over one internal/wire
// connection on a Unix socket, with a handler that answers the payload at
// once, at 1 and 8 concurrent callers; beside it, the same exchange as HTTP/1.1
// keep-alive requests over a Unix socket (net/http on both ends), the
// baseline a naive direct path would have. ns/op is wall time per
// invocation over all callers; p50 and p99 are per-call latencies.
func BenchmarkWireRoundTrip(b *testing.B) {
	for _, callers := range []int{1, 8} {
		b.Run("wire-unix/c="+strconv.Itoa(callers), func(b *testing.B) {
			c := wireConn(b)
			inv := env.Invocation{RequestID: "bench", Payload: echoBody}
			wireLoad(b, callers, func() error {
				_, err := c.Invoke(context.Background(), "env", inv)
				return err
			})
		})
		b.Run("http1-unix/c="+strconv.Itoa(callers), func(b *testing.B) {
			client := wireHTTPBaseline(b)
			wireLoad(b, callers, func() error {
				resp, err := client.Post("http://agent/invoke", "application/json", bytes.NewReader(echoBody))
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return err
			})
		})
	}
}

func wireSocket(b *testing.B) string {
	dir, err := os.MkdirTemp("", "wb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

func wireConn(b *testing.B) *wire.Conn {
	path := wireSocket(b)
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	srv := wire.NewServer(wire.HandlerFunc(func(_ context.Context, _ string, inv env.Invocation) (env.Result, error) {
		return env.Result{Payload: inv.Payload}, nil
	}), nil, nil)
	go srv.Serve(ln)
	c, err := wire.Dial(context.Background(), "unix", path, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		srv.Close()
	})
	return c
}

func wireHTTPBaseline(b *testing.B) *http.Client {
	path := wireSocket(b)
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 64,
	}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// wireLoad spreads b.N calls over callers goroutines and reports latency percentiles.
func wireLoad(b *testing.B, callers int, call func() error) {
	for range 100 { // warm up connections
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	var failed sync.Once
	b.ResetTimer()
	for g := range callers {
		n := b.N / callers
		if g < b.N%callers {
			n++
		}
		lat[g] = make([]time.Duration, 0, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				t0 := time.Now()
				if err := call(); err != nil {
					failed.Do(func() { b.Error(err) })
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
