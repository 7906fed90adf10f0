package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shoal-dev/shoal/internal/netlab"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/sigv4"
)

// The cluster benchmarks run shoal on machines made of network namespaces
// (internal/netlab): a bridge of their own with addresses from
// 198.18.0.0/15, as test/cluster_test.go does. The load comes from this
// process, outside every machine, over the bridge, so that every target is
// reached the same way. They need root and iproute2, and skip without.

// netProc is a shoal process running in a lab machine.
type netProc struct {
	m   *netlab.Machine
	cmd *exec.Cmd
	out *syncBuffer
}

// syncBuffer is a bytes.Buffer that a process writes while the benchmark reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// startIn runs shoal (the binary at bin) with args in machine m until the
// benchmark ends (or kill) and waits until its output holds want.
func startIn(b *testing.B, m *netlab.Machine, bin, want string, args ...string) *netProc {
	b.Helper()
	p := &netProc{m: m, cmd: m.Command(bin, args...), out: &syncBuffer{}}
	p.cmd.Env = append(os.Environ(), shoalEnv()...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
		}
		p.kill()
		if b.Failed() {
			b.Logf("%s %s's output (the end):\n%s", m.Name, args[0], tail(p.out.String(), 8000))
		}
	})
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(p.out.String(), want) {
		select {
		case <-exited:
			b.Fatalf("shoal %s in %s exited:\n%s", args[0], m.Name, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("shoal %s in %s did not say %q:\n%s", args[0], m.Name, want, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// pid is the shoal process's id: `ip netns exec` execs it in place.
func (p *netProc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL to every process of the machine, as a machine that dies.
func (p *netProc) kill() {
	out, _ := exec.Command("ip", "netns", "pids", p.m.Name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// netShoal is a `shoal up` in a lab machine, and how to call it.
type netShoal struct {
	*netProc
	endpoint string
	client   *lambda.Client
	http     *http.Client
	data     string
}

// secret is the cluster's secret file, which its first node writes.
func (s *netShoal) secret() string { return filepath.Join(s.data, "cluster-secret") }

// join is the NATS URL that hosts join the cluster at.
func (s *netShoal) join() string { return "nats://" + s.m.IP + ":4222" }

// upIn runs `shoal up` (the binary at bin) in m with args added (the API on
// m's address, port 9000) and waits until it serves.
func upIn(b *testing.B, m *netlab.Machine, bin string, args ...string) *netShoal {
	b.Helper()
	data := b.TempDir()
	addr := m.IP + ":9000"
	p := startIn(b, m, bin, "shoal is up", append([]string{"up", "--data", data, "--listen", addr,
		"--metrics-listen", "127.0.0.1:0", "--url-listen", "127.0.0.1:0"}, args...)...)
	profiles, err := sigv4.ReadCredentialsFile(filepath.Join(data, "credentials"))
	if err != nil || len(profiles) == 0 {
		b.Fatalf("shoal's credentials: %v", err)
	}
	creds := credentials.NewStaticCredentialsProvider(profiles[0].AccessKeyID, profiles[0].SecretAccessKey, "")
	keysByHost.Store(addr, aws.CredentialsProvider(creds))
	endpoint := "http://" + addr
	return &netShoal{netProc: p, endpoint: endpoint, data: data,
		client: lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: creds}),
		http:   &http.Client{Transport: signerFor(endpoint, http.DefaultTransport), Timeout: 10 * time.Second}}
}

// clusterNodeIn runs `shoal up` in m as the only node of a cluster; with
// host false, it runs no instances of its own.
func clusterNodeIn(b *testing.B, m *netlab.Machine, bin string, host bool, zone string) *netShoal {
	b.Helper()
	return upIn(b, m, bin, "--cluster-name", "bench", "--cluster-listen", m.IP+":6222", "--nats-listen", m.IP+":4222",
		"--advertise", m.IP, "--zone", zone, "--host="+strconv.FormatBool(host), "--vcpus", "64", "--memory", "262144")
}

// hostIn runs `shoal host` in m, joined to the cluster of node.
func hostIn(b *testing.B, m *netlab.Machine, bin string, node *netShoal, name, zone string) *netProc {
	b.Helper()
	return startIn(b, m, bin, "is up in zone", "host", "--join", node.join(), "--cluster-secret", node.secret(),
		"--name", name, "--zone", zone, "--advertise", m.IP, "--data", b.TempDir(), "--vcpus", "64", "--memory", "262144")
}

// fleetView is GET /shoal/v1/fleet, the parts the benchmarks read.
type fleetView struct {
	Hosts []struct {
		Name, Zone, State string
	} `json:"hosts"`
	Instances []struct {
		ID, Host, Zone, State string
		Environments          []struct {
			ID, Function, Version, State string
		} `json:"environments"`
	} `json:"instances"`
}

func (s *netShoal) fleet() (fleetView, error) {
	var f fleetView
	resp, err := s.http.Get(s.endpoint + "/shoal/v1/fleet")
	if err != nil {
		return f, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return f, fmt.Errorf("fleet: %s %s", resp.Status, body)
	}
	return f, json.NewDecoder(resp.Body).Decode(&f)
}

// needLab skips a benchmark that cannot build lab machines here.
func needLab(b *testing.B) {
	b.Helper()
	if why := netlab.Available(); why != "" {
		b.Skip(why)
	}
}

// BenchmarkClusterWarmInvoke compares a warm invoke of the no-op
// aws-lambda-go echo function on Managed Instances (one environment, N = 8)
// at 8 clients, in one run, three ways:
//
//   - one-machine: `shoal up` alone in one machine: the front reaches the
//     agent over a Unix socket (the baseline);
//   - cluster-one-machine: `shoal up` as the only node of a cluster, its own
//     host: the front reaches the agent over TCP with TLS, on one machine;
//   - cluster-two-machines: the front on one machine (a node with
//     --host=false), the environment on another (`shoal host`): the invoke
//     wire crosses the lab's bridge, over TLS.
//
// The load comes from outside the machines over the bridge in all three. The
// setup is made once per run of the parent, before its sub-benchmarks (which
// then run in turn), so run it with -count for rounds.
func BenchmarkClusterWarmInvoke(b *testing.B) {
	needLab(b)
	lab := netlab.New(b)
	type target struct {
		name  string
		url   string
		procs []watched
	}
	var targets []target
	bin := filepath.Join(binaries(b), "shoal")

	alone := upIn(b, lab.Machine(), bin)
	url := deployManaged(b, alone.endpoint, alone.client, 8, goFn)
	targets = append(targets, target{"one-machine", url, append([]watched{{name: "front", pids: []int{alone.pid()}}}, agentOf(alone.pid())...)})

	node := clusterNodeIn(b, lab.Machine(), bin, true, "us-east-1a")
	url = deployManaged(b, node.endpoint, node.client, 8, goFn)
	targets = append(targets, target{"cluster-one-machine", url, append([]watched{{name: "front", pids: []int{node.pid()}}}, agentOf(node.pid())...)})

	twoMachines := func(name, bin string) {
		front := clusterNodeIn(b, lab.Machine(), bin, false, "us-east-1a")
		host := hostIn(b, lab.Machine(), bin, front, "h1", "us-east-1a")
		url := deployManaged(b, front.endpoint, front.client, 8, goFn)
		targets = append(targets, target{name, url, append([]watched{{name: "front", pids: []int{front.pid()}}}, agentOf(host.pid())...)})
	}
	twoMachines("cluster-two-machines", bin)
	// An A/B of a change on this path: the same two machines running the
	// shoal binary at SHOAL_BENCH_BASE_BIN (built from the code before it).
	if base := os.Getenv("SHOAL_BENCH_BASE_BIN"); base != "" {
		twoMachines("cluster-two-machines-base", base)
	}

	for _, t := range targets {
		if len(t.procs) < 3 {
			b.Fatalf("%s: no agent with an environment found", t.name)
		}
		b.Run(t.name+"/c=8", func(b *testing.B) {
			load(b, t.url, 8, echoBody, t.procs...)
		})
	}
}

// BenchmarkClusterOnDemandWarmInvoke compares a warm on-demand invoke of the
// no-op aws-lambda-go echo function (1769 MB = 1 vCPU), at 1 and 8 clients,
// in one run, two ways:
//
//   - one-machine: `shoal up` alone: the environments run in its process (the
//     baseline, and what a single machine does whatever the cluster code);
//   - cluster-two-machines: the front on one machine (a node with
//     --host=false), the environments on another (`shoal host`, its classic
//     agent): each invocation crosses the invoke wire over TLS.
//
// The load comes from outside the machines over the bridge in both. The
// setup is made once per run of the parent, so run it with -count for rounds.
func BenchmarkClusterOnDemandWarmInvoke(b *testing.B) {
	needLab(b)
	lab := netlab.New(b)
	bin := filepath.Join(binaries(b), "shoal")
	type target struct {
		name  string
		url   string
		procs []watched
	}
	alone := upIn(b, lab.Machine(), bin)
	deployEcho(b, alone.client, 1769)
	front := clusterNodeIn(b, lab.Machine(), bin, false, "us-east-1a")
	host := hostIn(b, lab.Machine(), bin, front, "h1", "us-east-1a")
	deployEcho(b, front.client, 1769)
	const path = "/2015-03-31/functions/echo/invocations"
	targets := []target{
		{"one-machine", alone.endpoint + path, []watched{{name: "front", pids: []int{alone.pid()}}}},
		{"cluster-two-machines", front.endpoint + path, []watched{{name: "front", pids: []int{front.pid()}},
			{name: "host", pids: []int{host.pid()}}}},
	}
	for _, clients := range []int{1, 8} {
		for _, t := range targets {
			b.Run(fmt.Sprintf("%s/c=%d", t.name, clients), func(b *testing.B) {
				load(b, t.url, clients, echoBody, t.procs...)
			})
		}
	}
	// The front ran none of them: every environment is the host's.
	until(b, 10*time.Second, "the environments on the host", func() (bool, error) {
		var f struct {
			Classic []struct {
				Host         string
				Environments []struct{ Function string }
			} `json:"classic"`
		}
		resp, err := front.http.Get(front.endpoint + "/shoal/v1/fleet")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
			return false, err
		}
		for _, a := range f.Classic {
			if a.Host == "h1" && len(a.Environments) > 0 {
				return true, nil
			}
		}
		return false, fmt.Errorf("no environment on h1's classic agent: %+v", f.Classic)
	})
}

// until waits (poll.Until) for cond to hold, failing the benchmark after
// within; it returns when it held.
func until(b *testing.B, within time.Duration, what string, cond func() (bool, error)) time.Time {
	b.Helper()
	poll.Until(b, within, func() error {
		ok, err := cond()
		switch {
		case ok:
			return nil
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
		return fmt.Errorf("%s: not yet", what)
	})
	return time.Now()
}

// invokes reports whether an invocation of echo:version succeeds.
func (s *netShoal) invokes(version string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := s.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String(version),
		Payload: echoBody}, func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
	if err != nil {
		return false, err
	}
	if out.FunctionError != nil {
		return false, fmt.Errorf("function error %s", out.Payload)
	}
	return true, nil
}

// readyOn counts the ready environments of echo:version on running
// instances, by host.
func (f fleetView) readyOn(version string) map[string]int {
	out := map[string]int{}
	for _, in := range f.Instances {
		for _, e := range in.Environments {
			if in.State == "running" && e.Function == "echo" && e.Version == version && e.State == "ready" {
				out[in.Host]++
			}
		}
	}
	return out
}

// sinceMetric reports the time from t0 to t in seconds, as metric unit.
func sinceMetric(b *testing.B, t0, t time.Time, unit string) {
	b.ReportMetric(t.Sub(t0).Seconds(), unit)
}

// BenchmarkClusterHostJoin: a cluster node with no capacity of its own
// (--host=false) holds a Managed Instances version of one environment that
// cannot be placed; then `shoal host` starts on another machine. It reports
// the seconds from the host's start until it is up (it says so), until the
// leader has placed an instance on it, until that instance runs, until the
// environment is ready, and until an invocation through the node succeeds.
// Each iteration builds its machines anew: run it with -benchtime 1x and
// -count for rounds.
func BenchmarkClusterHostJoin(b *testing.B) {
	needLab(b)
	bin := filepath.Join(binaries(b), "shoal")
	for range b.N {
		lab := netlab.New(b)
		front := clusterNodeIn(b, lab.Machine(), bin, false, "us-east-1a")
		version := createManaged(b, front.client, 8, 1, goFn)
		hostM := lab.Machine()
		t0 := time.Now()
		hostIn(b, hostM, bin, front, "h1", "us-east-1a")
		up := time.Now()
		var f fleetView
		fetch := func() (err error) { f, err = front.fleet(); return err }
		placed := until(b, time.Minute, "an instance placed on the host", func() (bool, error) {
			if err := fetch(); err != nil {
				return false, err
			}
			for _, in := range f.Instances {
				if in.Host == "h1" {
					return true, nil
				}
			}
			return false, nil
		})
		running := until(b, time.Minute, "the host's instance running", func() (bool, error) {
			if err := fetch(); err != nil {
				return false, err
			}
			for _, in := range f.Instances {
				if in.Host == "h1" && in.State == "running" {
					return true, nil
				}
			}
			return false, nil
		})
		ready := until(b, time.Minute, "an environment ready on the host", func() (bool, error) {
			err := fetch()
			return f.readyOn(version)["h1"] > 0, err
		})
		served := until(b, time.Minute, "an invocation served", func() (bool, error) { return front.invokes(version) })
		b.StopTimer()
		sinceMetric(b, t0, up, "s-host-up")
		sinceMetric(b, t0, placed, "s-instance-placed")
		sinceMetric(b, t0, running, "s-instance-running")
		sinceMetric(b, t0, ready, "s-env-ready")
		sinceMetric(b, t0, served, "s-first-invoke")
		front.kill()
		b.StartTimer()
	}
}

// BenchmarkClusterHostLoss: a cluster node with no capacity of its own and
// two hosts in two zones serve a Managed Instances version of two
// environments (min = max = 2), one on each host, while one client invokes
// it without pause. Then every process of one host is killed (SIGKILL). It
// reports the seconds from the kill until the leader marks the host lost,
// until an instance launched in the stead of the lost ones runs on the
// other host, and until two environments are ready again, none on the lost
// host (the replacement may land on the other host's running instance,
// when it has room); and, of the client's invocations from the kill until
// then, those served, throttled (429), and failed before and after the loss
// was noticed. Each iteration builds its machines anew: run it with
// -benchtime 1x and -count for rounds.
func BenchmarkClusterHostLoss(b *testing.B) {
	needLab(b)
	bin := filepath.Join(binaries(b), "shoal")
	for range b.N {
		lab := netlab.New(b)
		front := clusterNodeIn(b, lab.Machine(), bin, false, "us-east-1a")
		victim := hostIn(b, lab.Machine(), bin, front, "h1", "us-east-1a")
		hostIn(b, lab.Machine(), bin, front, "h2", "us-east-1b")
		version := createManaged(b, front.client, 8, 2, goFn)
		var f fleetView
		fetch := func() (err error) { f, err = front.fleet(); return err }
		waitActive(b, front.client, "echo", version, 2*time.Minute)
		until(b, 2*time.Minute, "one environment on each host, and no other", func() (bool, error) {
			err := fetch()
			r, envs := f.readyOn(version), 0
			for _, in := range f.Instances {
				envs += len(in.Environments)
			}
			return r["h1"] == 1 && r["h2"] == 1 && envs == 2, err
		})
		before := map[string]bool{}
		for _, in := range f.Instances {
			before[in.ID] = true
		}
		b.Logf("before the loss: %+v", f.Instances)

		var (
			mu                 sync.Mutex
			failed, throttled  int
			served             int
			stop               = make(chan struct{})
			loadDone           = make(chan struct{})
			killedAt, restored time.Time
		)
		go func() {
			defer close(loadDone)
			for {
				select {
				case <-stop:
					return
				default:
				}
				ok, err := front.invokes(version)
				mu.Lock()
				if !killedAt.IsZero() && restored.IsZero() {
					switch {
					case ok:
						served++
					case err != nil && strings.Contains(err.Error(), "StatusCode: 429"):
						throttled++
					default:
						failed++
						b.Logf("an invocation failed after the loss: %v", err)
					}
				}
				mu.Unlock()
			}
		}()
		time.Sleep(500 * time.Millisecond) // the load under way before the loss
		mu.Lock()
		killedAt = time.Now()
		mu.Unlock()
		victim.kill()
		var failedBefore int
		lost := until(b, time.Minute, "the host marked lost", func() (bool, error) {
			if err := fetch(); err != nil {
				return false, err
			}
			for _, h := range f.Hosts {
				if h.Name == "h1" && h.State == "lost" {
					mu.Lock()
					failedBefore = failed
					mu.Unlock()
					return true, nil
				}
			}
			return false, nil
		})
		// The lost environment comes back on the other host: on an instance
		// launched in the lost one's stead, or on the one there when it has
		// room. The lost instances are replaced there too.
		var replaced, ready time.Time
		until(b, 2*time.Minute, "two environments ready again and an instance in the lost ones' stead", func() (bool, error) {
			if err := fetch(); err != nil {
				return false, err
			}
			for _, in := range f.Instances {
				if replaced.IsZero() && !before[in.ID] && in.Host != "h1" && in.State == "running" {
					replaced = time.Now()
				}
			}
			if r := f.readyOn(version); ready.IsZero() && r["h1"] == 0 && r["h2"] >= 2 {
				ready = time.Now()
			}
			return !ready.IsZero() && !replaced.IsZero(), nil
		})
		mu.Lock()
		restored = time.Now()
		mu.Unlock()
		b.Logf("after: %+v", f.Instances)
		close(stop)
		<-loadDone
		b.StopTimer()
		sinceMetric(b, killedAt, lost, "s-host-lost")
		sinceMetric(b, killedAt, replaced, "s-instance-replaced")
		sinceMetric(b, killedAt, ready, "s-envs-ready")
		b.ReportMetric(float64(served), "served-during")
		b.ReportMetric(float64(throttled), "throttled-during")
		b.ReportMetric(float64(failedBefore), "failed-before-noticed")
		b.ReportMetric(float64(failed-failedBefore), "failed-after-noticed")
		front.kill()
		b.StartTimer()
	}
}
