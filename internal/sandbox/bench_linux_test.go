//go:build linux

package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// startVariant is one way of starting a process measured by the benchmarks.
type startVariant struct {
	name            string
	isolate, cgroup bool
	cpus            float64 // CPU quota in vCPUs, 0 = none
}

// lambda128 is Lambda's CPU share of a 128 MB function (7.2 ms per 100 ms period).
var lambda128 = CPUsForMemory(128)

var startVariants = []startVariant{
	{"plain", false, false, 0},
	{"plain+cgroup", false, true, 0},
	{"plain+cgroup+quota128", false, true, lambda128},
	{"isolated", true, false, 0},
	{"isolated+cgroup", true, true, 0},
	{"isolated+cgroup+quota128", true, true, lambda128},
}

// phases are the durations of one sandbox cycle running /bin/true.
type phases struct{ new, startExit, close time.Duration }

// cycle creates a sandbox, starts /bin/true in it, waits for it and closes the sandbox.
func cycle(b *testing.B, v startVariant, code string) phases {
	noCgroups = !v.cgroup
	defer func() { noCgroups = false }()
	t0 := time.Now()
	s, err := New(Config{ID: testID(b), CodeDir: code, MemoryMB: 128, CPUs: v.cpus, Isolate: v.isolate}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if v.isolate && !s.Isolated() || v.cgroup && s.CgroupPath() == "" {
		_ = s.Close()
		b.Skipf("%s not available: %s", v.name, s.Limited())
	}
	t1 := time.Now()
	cmd := exec.Command("/bin/true")
	if err := s.Start(cmd); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	t2 := time.Now()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return phases{t1.Sub(t0), t2.Sub(t1), time.Since(t2)}
}

func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds())
}

// BenchmarkStart measures what confinement adds to starting a process, one variant at a
// time. Each iteration is a whole cycle (ns/op); the metrics are the median of each
// phase: new-µs (New: cgroup mkdir and limits), start-exit-µs (Start until /bin/true
// has exited and been reaped), close-µs (Close: kill, cgroup removal).
func BenchmarkStart(b *testing.B) {
	code := codeDir(b)
	b.Run("exec", func(b *testing.B) {
		var d []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(t0))
		}
		b.ReportMetric(median(d), "start-exit-µs")
	})
	for _, v := range startVariants {
		b.Run(v.name, func(b *testing.B) {
			var ps []phases
			for b.Loop() {
				ps = append(ps, cycle(b, v, code))
			}
			report(b, "", ps)
		})
	}
}

// BenchmarkStartInterleaved runs every variant once per iteration, so that on a shared,
// noisy machine all variants see the same load; it reports each variant's medians.
func BenchmarkStartInterleaved(b *testing.B) {
	code := codeDir(b)
	all := make([][]phases, len(startVariants))
	var execs []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		execs = append(execs, time.Since(t0))
		for i, v := range startVariants {
			all[i] = append(all[i], cycle(b, v, code))
		}
	}
	b.ReportMetric(median(execs), "exec-start-exit-µs")
	for i, v := range startVariants {
		report(b, v.name+"-", all[i])
	}
}

func report(b *testing.B, prefix string, ps []phases) {
	var n, se, c []time.Duration
	for _, p := range ps {
		n, se, c = append(n, p.new), append(se, p.startExit), append(c, p.close)
	}
	b.ReportMetric(median(n), prefix+"new-µs")
	b.ReportMetric(median(se), prefix+"start-exit-µs")
	b.ReportMetric(median(c), prefix+"close-µs")
}

// BenchmarkGoStartQuota starts a small Go program (net/http linked in, as a Lambda Go
// function is) under CPU quotas: Lambda's share for 128 MB (7.2 ms of CPU per 100 ms),
// for 512 MB, one vCPU, and none. Start-up CPU beyond the first period's quota waits for
// the next period, which is what a cold start pays when the quota applies during init.
func BenchmarkGoStartQuota(b *testing.B) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		b.Skip("go tool not found")
	}
	dir := b.TempDir()
	src := `package main

import (
	"fmt"
	"net/http"
)

var _ = http.DefaultClient

func main() { fmt.Println("ready") }
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	build := exec.Command(goTool, "build", "-o", "hello", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "hello")
	for _, q := range []struct {
		name string
		cpus float64
	}{{"none", 0}, {"128MB", CPUsForMemory(128)}, {"512MB", CPUsForMemory(512)}, {"1vCPU", 1}} {
		b.Run(q.name, func(b *testing.B) {
			var wall, cpu []time.Duration
			for b.Loop() {
				s, err := New(Config{ID: testID(b), CodeDir: dir, MemoryMB: 128, CPUs: q.cpus}, nil)
				if err != nil {
					b.Fatal(err)
				}
				if s.CgroupPath() == "" {
					b.Skipf("no cgroup: %s", s.Limited())
				}
				t0 := time.Now()
				cmd := exec.Command(bin)
				if err := s.Start(cmd); err != nil {
					b.Fatal(err)
				}
				if err := cmd.Wait(); err != nil {
					b.Fatal(err)
				}
				wall = append(wall, time.Since(t0))
				cpu = append(cpu, s.CPUTime())
				_ = s.Close()
			}
			b.ReportMetric(median(wall), "start-exit-µs")
			b.ReportMetric(median(cpu), "cpu-µs")
		})
	}
}
