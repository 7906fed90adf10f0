package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/router"
	"github.com/shoal-dev/shoal/internal/wire"
)

// BenchmarkManagedRouterAtScale measures what the Managed Instances router
// costs per invocation when its table holds 500 environments (50 versions of
// 10 environments, 8 slots each) on 72 instances, as the control plane of
// BenchmarkManagedAtScale does. The agents are fake: 72 wire servers in this
// process, on Unix sockets, that answer every invocation at once with its
// payload. The router reaches them through the control plane's own
// connection pool (fleet.Pool).
//
// Every block of invocations (1,000 per client, or a tenth of the run when
// that is less) goes either through the router (router.RouteKey and
// Managed.Invoke, to one version's 10 environments) or straight to the
// same environments' connections
// (wire.Conn.Invoke, round robin), alternately. The router's cost is the
// difference: of this process's CPU per invocation (router-cpu-ns/op,
// from getrusage over the blocks of each kind) and, at one client, of the
// medians of each invocation's wall time (router-wall-ns/op). The bytes and
// allocations the router adds are measured apart, at one client. Run it with
// -benchtime 200000x.
func BenchmarkManagedRouterAtScale(b *testing.B) {
	const (
		versions     = 50
		envsPer      = 10
		instances    = 72
		slots        = 8
		blockPerUser = 1000
	)
	dir, err := os.MkdirTemp("", "router")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	answer := wire.HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		return env.Result{Payload: inv.Payload}, nil
	})
	ins := make([]fleet.Instance, instances)
	for i := range ins {
		path := filepath.Join(dir, fmt.Sprint(i))
		ln, err := net.Listen("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		srv := wire.NewServer(answer, nil, nil)
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		ins[i] = fleet.Instance{ID: fmt.Sprintf("i-%03d", i), CapacityProvider: fmt.Sprintf("cp-%d", i%5), Type: scaleType,
			Zone: fmt.Sprintf("zone-%d", i%3), State: fleet.StateRunning, InvokeNetwork: "unix", InvokeAddr: path}
	}
	for v := range versions {
		for e := range envsPer {
			in := &ins[(v*envsPer+e)%instances]
			in.Environments = append(in.Environments, fleet.EnvStatus{ID: fmt.Sprintf("e-%02d-%02d", v, e),
				Function: fmt.Sprintf("fn-%02d", v), Version: "1", Slots: slots, State: "ready"})
		}
	}
	pool := fleet.NewPool(nil)
	b.Cleanup(pool.Close)
	m := router.NewManaged(pool)
	m.Update(ins)
	if got := m.Environments("fn-07:1"); got != envsPer {
		b.Fatalf("the table holds %d environments of fn-07, want %d", got, envsPer)
	}
	// The version invoked, and its environments' connections for the
	// direct calls.
	type target struct {
		env  string
		conn *wire.Conn
	}
	var direct []target
	for _, in := range ins {
		for _, e := range in.Environments {
			if e.Function == "fn-07" {
				c, err := pool.Conn(context.Background(), in)
				if err != nil {
					b.Fatal(err)
				}
				direct = append(direct, target{e.ID, c})
			}
		}
	}
	ctx := context.Background()
	viaRouter := func(inv env.Invocation) error {
		_, err := m.Invoke(ctx, router.RouteKey("fn-07", "1", ""), inv)
		return err
	}
	next := 0
	var mu sync.Mutex
	viaWire := func(inv env.Invocation) error {
		mu.Lock()
		t := direct[next%len(direct)]
		next++
		mu.Unlock()
		_, err := t.conn.Invoke(ctx, t.env, inv)
		return err
	}

	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("c=%d", clients), func(b *testing.B) {
			inv := env.Invocation{RequestID: "r", Payload: echoBody}
			for range 2000 { // warm up: connections, pools
				_ = viaRouter(inv)
				_ = viaWire(inv)
			}
			var (
				cpu, wall [2]time.Duration
				ops       [2]int
				lat       [2][]time.Duration
			)
			b.ResetTimer()
			for k, done := 0, 0; done < b.N; k++ {
				mode := k % 2
				call := viaRouter
				if mode == 1 {
					call = viaWire
				}
				n := min(blockPerUser*clients, max(b.N/10, 1), b.N-done) // ten blocks at least
				c0, t0 := processCPU(), time.Now()
				per := make([][]time.Duration, clients)
				var wg sync.WaitGroup
				for c := range clients {
					share := n / clients
					if c < n%clients {
						share++
					}
					wg.Go(func() {
						per[c] = make([]time.Duration, 0, share)
						for range share {
							s := time.Now()
							if err := call(inv); err != nil {
								b.Error(err)
								return
							}
							per[c] = append(per[c], time.Since(s))
						}
					})
				}
				wg.Wait()
				cpu[mode] += processCPU() - c0
				wall[mode] += time.Since(t0)
				ops[mode] += n
				for _, p := range per {
					lat[mode] = append(lat[mode], p...)
				}
				done += n
			}
			b.StopTimer()
			if ops[0] == 0 || ops[1] == 0 {
				return // the first, one-invocation run: nothing to compare
			}
			perOp := func(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }
			median := func(l []time.Duration) float64 {
				slices.Sort(l)
				return float64(l[len(l)/2].Nanoseconds())
			}
			b.ReportMetric(perOp(cpu[0], ops[0]), "router-path-cpu-ns/op")
			b.ReportMetric(perOp(cpu[1], ops[1]), "wire-path-cpu-ns/op")
			b.ReportMetric(perOp(cpu[0], ops[0])-perOp(cpu[1], ops[1]), "router-cpu-ns/op")
			mr, mw := median(lat[0]), median(lat[1])
			b.ReportMetric(mr, "router-path-p50-ns")
			b.ReportMetric(mw, "wire-path-p50-ns")
			if clients == 1 { // at 8, the medians are the clients' queueing
				b.ReportMetric(mr-mw, "router-wall-ns/op")
			}
			b.ReportMetric(float64(ops[0])/wall[0].Seconds(), "router-path-op/s")
			b.ReportMetric(float64(ops[1])/wall[1].Seconds(), "wire-path-op/s")
			if clients == 1 {
				ra, rb := allocs(func() { _ = viaRouter(inv) })
				wa, wb := allocs(func() { _ = viaWire(inv) })
				b.ReportMetric(ra-wa, "router-allocs/op")
				b.ReportMetric(rb-wb, "router-B/op")
			}
		})
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// allocs reports the mean allocations and bytes of 10,000 calls of f.
func allocs(f func()) (n, bytes float64) {
	const runs = 10000
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / runs, float64(m1.TotalAlloc-m0.TotalAlloc) / runs
}
