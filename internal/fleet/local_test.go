package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/logs"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/testfn"
)

var (
	agentBin  string   // a binary whose args "agent --nats …" run agent.Run
	agentArgs []string // what comes before the agent's flags
	goFnZip   []byte   // test/testdata/gofn as a provided-runtime zip
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shoal-fleet-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		if err := buildBinaries(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.RemoveAll(dir)
	os.Exit(code)
}

func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// buildBinaries builds the shoal binary and uses it when it has the agent
// command, else a test main that runs agent.Run with the same flags.
func buildBinaries(dir string) error {
	shoal := filepath.Join(dir, "shoal")
	if err := goBuild(shoal, "../../cmd/shoal"); err == nil &&
		exec.Command(shoal, "agent", "--help").Run() == nil {
		agentBin, agentArgs = shoal, []string{"agent"}
	} else {
		agentBin, agentArgs = filepath.Join(dir, "agentmain"), []string{"agent"}
		if err := goBuild(agentBin, "./testdata/agentmain"); err != nil {
			return err
		}
	}
	var err error
	goFnZip, err = testfn.GoZip(dir, "../../test/testdata/gofn")
	return err
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type fixture struct {
	bus  *bus.Bus
	sha  string
	cfg  LocalConfig
	deps LocalDeps
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	secret := bus.Secret("the fleet tests' thirty-two bytes")
	b, err := bus.Start(ctx, bus.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	// The streams the control plane keeps, which agents write to.
	if err := ledger.EnsureStream(ctx, b.JetStream(), 0, 1); err != nil {
		t.Fatal(err)
	}
	ls, err := logs.Open(ctx, b.JetStream(), logs.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls.Close()
	obj, err := b.JetStream().CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "shoal_code"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(goFnZip)
	sha, key := base64.StdEncoding.EncodeToString(sum[:]), hex.EncodeToString(sum[:])
	if _, err := obj.PutBytes(ctx, key, goFnZip); err != nil {
		t.Fatal(err)
	}
	work, err := os.MkdirTemp("", "fl") // short: Unix socket paths live here
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	return &fixture{bus: b, sha: sha,
		cfg: LocalConfig{NATSURL: b.ClientURL(), Secret: secret, Binary: agentBin, Args: agentArgs, WorkDir: work,
			Heartbeat: 100 * time.Millisecond, HeartbeatTimeout: 2 * time.Second, BootTimeout: 30 * time.Second},
		deps: LocalDeps{Logger: testLogger(), NATS: b.Conn()}}
}

func stateOf(l *Local, id string) string {
	in, ok := l.Instance(id)
	if !ok {
		return StateTerminated
	}
	return in.State
}

func waitState(t *testing.T, l *Local, id, want string) {
	t.Helper()
	poll.Until(t, 30*time.Second, func() error {
		if got := stateOf(l, id); got != want {
			return fmt.Errorf("instance %s is %s, want %s", id, got, want)
		}
		return nil
	})
}

func TestLocalFleet(t *testing.T) {
	f := newFixture(t)
	l, err := NewLocal(f.cfg, f.deps)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	events := l.Watch(ctx)

	// Three instances of one capacity provider spread over the three zones.
	var ids []string
	for range 3 {
		id := NewInstanceID()
		if err := l.Launch(ctx, InstanceSpec{ID: id, CapacityProvider: "cp1", Type: "m7i.large"}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var zones []string
	for _, id := range ids {
		waitState(t, l, id, StateRunning)
		in, _ := l.Instance(id)
		zones = append(zones, in.Zone)
		if in.VCPU != 2 || in.MemoryMB != 8192 || in.InvokeNetwork != "unix" || in.InvokeAddr == "" || in.LastHeartbeat.IsZero() {
			t.Errorf("instance %+v", in)
		}
	}
	slices.Sort(zones)
	if !slices.Equal(zones, []string{"us-east-1a", "us-east-1b", "us-east-1c"}) {
		t.Errorf("zones %v", zones)
	}
	running := map[string]bool{}
	poll.Until(t, 5*time.Second, func() error {
		for {
			select {
			case ev := <-events:
				if ev.Instance.State == StateRunning && ev.Previous == StatePending {
					running[ev.Instance.ID] = true
				}
				continue
			default:
			}
			break
		}
		if len(running) != 3 {
			return fmt.Errorf("pending→running events for %d instances", len(running))
		}
		return nil
	})
	// Each agent runs in a cgroup of its type's size where cgroups allow.
	for _, id := range ids {
		l.mu.Lock()
		li := l.insts[id]
		pid, box := li.pid, li.box
		l.mu.Unlock()
		if box == nil || box.Limited() != "" {
			t.Logf("instance %s not confined: %v", id, box)
			continue
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if !strings.Contains(string(cg), "instance-"+id) {
			t.Errorf("agent %d is not in its instance cgroup:\n%s", pid, cg)
		}
		if lim, err := os.ReadFile(filepath.Join(box.CgroupPath(), "memory.limit_in_bytes")); err == nil &&
			strings.TrimSpace(string(lim)) != fmt.Sprint(8<<30) {
			t.Errorf("instance memory limit %s", lim)
		}
	}

	// An environment on the second instance, invoked through the pool.
	agents := agent.NewClient(f.bus.Conn())
	spec := env.Spec{FunctionName: "fn", Version: "1", Runtime: "provided.al2023", Handler: "bootstrap",
		MemoryMB: 512, Timeout: 10 * time.Second, MaxConcurrency: 4}
	if _, err := agents.StartEnvironment(ctx, ids[1], agent.StartEnv{EnvID: "env-1", CapacityProvider: "cp1",
		CodeSha256: f.sha, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if _, err := agents.StartEnvironment(ctx, ids[1], agent.StartEnv{EnvID: "env-2", CapacityProvider: "cp2",
		CodeSha256: f.sha, Spec: spec}); err == nil {
		t.Error("an instance of cp1 accepted an environment of cp2")
	}
	poll.Until(t, 10*time.Second, func() error {
		in, _ := l.Instance(ids[1])
		if len(in.Environments) != 1 || in.Environments[0].State != agent.EnvReady || in.Environments[0].Slots != 4 {
			return fmt.Errorf("environments %+v", in.Environments)
		}
		return nil
	})
	// The agents ask for their wire key, which the fixture's secret gives.
	pool := NewPool(func(id string) []byte {
		c, err := f.cfg.Secret.CredentialsFor(bus.AgentIdentity(id))
		if err != nil {
			t.Fatal(err)
		}
		return c.WireKey()
	})
	defer pool.Close()
	in1, _ := l.Instance(ids[1])
	res, err := pool.Invoke(ctx, in1, "env-1", env.Invocation{RequestID: "r1", Payload: []byte(`{"hello":"fleet"}`)})
	if err != nil || string(res.Payload) != `{"hello":"fleet"}` {
		t.Fatalf("invoke: %s, %v", res.Payload, err)
	}

	// SIGKILL the first instance's agent: it is marked lost.
	l.mu.Lock()
	pid0 := l.insts[ids[0]].pid
	l.mu.Unlock()
	if err := syscall.Kill(pid0, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitState(t, l, ids[0], StateLost)
	in0, _ := l.Instance(ids[0])
	t.Logf("lost: %s", in0.StateReason)
	if err := l.Terminate(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	waitState(t, l, ids[0], StateTerminated)

	// Terminate drains: an invocation in flight when it starts completes.
	// r1's slot is held until the runtime asks for its next event, so wait
	// for the heartbeats to show it free before counting the slow one.
	poll.Until(t, 10*time.Second, func() error {
		in, _ := l.Instance(ids[1])
		if len(in.Environments) == 1 && in.Environments[0].InFlight == 0 {
			return nil
		}
		return errors.New("r1 still holds its slot")
	})
	slow := make(chan error, 1)
	go func() {
		res, err := pool.Invoke(ctx, in1, "env-1", env.Invocation{RequestID: "slow", Payload: []byte(`{"op":"sleep","ms":700}`)})
		if err == nil && string(res.Payload) != `{"slept_ms":700}` {
			err = fmt.Errorf("payload %s", res.Payload)
		}
		slow <- err
	}()
	poll.Until(t, 10*time.Second, func() error {
		in, _ := l.Instance(ids[1])
		if len(in.Environments) == 1 && in.Environments[0].InFlight == 1 {
			return nil
		}
		return errors.New("not in flight yet")
	})
	terminated := make(chan error, 1)
	go func() { terminated <- l.Terminate(ctx, ids[1]) }()
	waitState(t, l, ids[1], StateDraining)
	if err := <-slow; err != nil {
		t.Errorf("in-flight invocation during terminate: %v", err)
	}
	if err := <-terminated; err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Invoke(ctx, in1, "env-1", env.Invocation{RequestID: "late"}); err == nil {
		t.Error("terminated instance still answers")
	}

	// A restarted control plane adopts the instance that is still running.
	l.Close()
	l2, err := NewLocal(f.cfg, f.deps)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	got := l2.Instances()
	if len(got) != 1 || got[0].ID != ids[2] || got[0].State != StateRunning {
		t.Fatalf("adopted %+v", got)
	}
	if err := l2.Terminate(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	if n := len(l2.Instances()); n != 0 {
		t.Errorf("%d instances left", n)
	}
	keys, err := l2.kv.ListKeys(ctx)
	if err == nil {
		for k := range keys.Keys() {
			t.Errorf("record %s left in KV", k)
		}
	}
}

func TestLaunchValidation(t *testing.T) {
	f := newFixture(t)
	l, err := NewLocal(f.cfg, f.deps)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		name string
		spec InstanceSpec
	}{
		{"no capacity provider", InstanceSpec{Type: "m7i.large"}},
		{"unknown type", InstanceSpec{CapacityProvider: "cp", Type: "z9.huge"}},
		{"unknown zone", InstanceSpec{CapacityProvider: "cp", Type: "m7i.large", Zone: "mars-1a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Launch(context.Background(), tc.spec); err == nil {
				t.Error("launched")
			}
		})
	}
	// A pending instance terminated during its launch delay never starts.
	cfg := f.cfg
	cfg.LaunchDelay = time.Hour
	cfg.Bucket = "shoal_fleet_delay"
	ld, err := NewLocal(cfg, f.deps)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	if err := ld.Launch(context.Background(), InstanceSpec{ID: "i-delayed", CapacityProvider: "cp", Type: "c7g.large"}); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(ld, "i-delayed"); got != StatePending {
		t.Fatalf("state %s", got)
	}
	if err := ld.Terminate(context.Background(), "i-delayed"); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(ld, "i-delayed"); got != StateTerminated {
		t.Fatalf("state %s", got)
	}
}
