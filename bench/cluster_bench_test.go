package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

// dialable reports whether addr accepts a TCP connection.
func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
