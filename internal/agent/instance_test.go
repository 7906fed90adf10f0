package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/sandbox"
	"github.com/shoal-dev/shoal/internal/wire"
)

type testAgent struct {
	a       *Agent
	metrics *fakeMetrics
	client  *Client
	hbs     *heartbeats
	conn    *wire.Conn
	sha     string
	cfg     Config
}

func startTestAgent(t *testing.T, mutate ...func(*Deps)) *testAgent {
	t.Helper()
	b, sha := testBus(t)
	sock, err := os.MkdirTemp("", "inst")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	cfg := Config{
		NATSURL: b.ClientURL(), NATSCreds: credsFile(t, "i-test"), ID: "i-test", CapacityProvider: "cp1", Type: "m7i.large", Zone: "us-east-1a",
		Socket: filepath.Join(sock, "agent.sock"), WorkDir: t.TempDir(), Heartbeat: 50 * time.Millisecond,
		StopTimeout: 30 * time.Second,
	}
	m := &fakeMetrics{}
	hbs := watchHeartbeats(t, b.Conn())
	deps := Deps{Logger: testLogger(), Metrics: m}
	for _, f := range mutate {
		f(&deps)
	}
	a, err := Start(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	network, addr := a.InvokeAddr()
	conn, err := wire.Dial(context.Background(), network, addr, wireKey(t, cfg.ID))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testAgent{a: a, metrics: m, client: NewClient(b.Conn()), hbs: hbs, conn: conn, sha: sha, cfg: cfg}
}

func (ta *testAgent) start(t *testing.T, envID string, n int) EnvStatus {
	t.Helper()
	st, err := ta.client.StartEnvironment(context.Background(), ta.cfg.ID,
		StartEnv{EnvID: envID, CapacityProvider: "cp1", CodeSha256: ta.sha, Spec: sleepySpec(n)})
	if err != nil {
		t.Fatalf("start %s: %v", envID, err)
	}
	return st
}

// envState waits until a heartbeat shows environment id in state (or gone, for "").
func (ta *testAgent) waitEnv(t *testing.T, id, state string) {
	t.Helper()
	poll.Until(t, 20*time.Second, func() error {
		hb, ok := ta.hbs.get(ta.cfg.ID)
		if !ok {
			return errors.New("no heartbeat yet")
		}
		for _, e := range hb.Environments {
			if e.ID == id {
				if e.State == state {
					return nil
				}
				return fmt.Errorf("environment %s is %s", id, e.State)
			}
		}
		if state == "" {
			return nil
		}
		return fmt.Errorf("environment %s not in the heartbeat", id)
	})
}

func sleepInv(i int) env.Invocation {
	return env.Invocation{RequestID: fmt.Sprintf("req-%02d", i), Payload: []byte(`{"op":"sleep","ms":1000}`)}
}

func TestSaturatedEnvironmentRefusesAtOnce(t *testing.T) {
	ta := startTestAgent(t)
	st := ta.start(t, "env-a", 10)
	if st.State != EnvReady || st.Slots != 10 {
		t.Fatalf("started %+v", st)
	}
	ta.waitEnv(t, "env-a", EnvReady)

	// 30 at once on one environment with 10 slots: 10 run, 20 are refused
	// before any of the 10 has finished (a refusal never waits for a slot).
	var ok, finished atomic.Int32
	var mu sync.Mutex
	var refusedBeforeAnyFinished, refusedAfter int
	var other []error
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := ta.conn.Invoke(context.Background(), "env-a", sleepInv(i))
			if err == nil {
				if res.FunctionError != "" {
					t.Errorf("function error: %s", res.Payload)
				}
				ok.Add(1)
				finished.Add(1)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if r, isRefusal := wire.AsRefused(err); isRefusal && r.Reason == wire.ReasonConcurrency {
				if finished.Load() == 0 {
					refusedBeforeAnyFinished++
				} else {
					refusedAfter++
				}
				return
			}
			other = append(other, err)
		}()
	}
	wg.Wait()
	if ok.Load() != 10 || refusedBeforeAnyFinished != 20 || refusedAfter != 0 || len(other) != 0 {
		t.Fatalf("ok %d, refused at once %d, refused late %d, other errors %v", ok.Load(), refusedBeforeAnyFinished, refusedAfter, other)
	}
	// Heartbeats count what happened: 10 at once at the peak, 10 run, 20 refused.
	poll.Until(t, 10*time.Second, func() error {
		hb, _ := ta.hbs.get(ta.cfg.ID)
		for _, e := range hb.Environments {
			if e.ID == "env-a" {
				if e.Invocations != 10 || e.Refused[wire.ReasonConcurrency] != 20 || ta.hbs.peakOf("env-a") != 10 {
					return fmt.Errorf("env-a: %d invocations, refused %v, peak %d", e.Invocations, e.Refused, ta.hbs.peakOf("env-a"))
				}
				return nil
			}
		}
		return errors.New("env-a not in the heartbeat")
	})

	// Three such environments, with the caller spreading as a router does
	// (try the next environment on a refusal), serve all 30 in one round.
	ta.start(t, "env-b", 10)
	ta.start(t, "env-c", 10)
	envs := []string{"env-a", "env-b", "env-c"}
	var served atomic.Int32
	began := time.Now()
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range envs {
				_, err := ta.conn.Invoke(context.Background(), envs[(i+k)%3], sleepInv(i))
				if err == nil {
					served.Add(1)
					return
				}
				if _, isRefusal := wire.AsRefused(err); !isRefusal {
					t.Errorf("invoke: %v", err)
					return
				}
			}
			t.Errorf("invocation %d refused by all three environments", i)
		}()
	}
	wg.Wait()
	t.Logf("30 one-second invocations over 3 environments of 10 slots took %v", time.Since(began))
	if served.Load() != 30 {
		t.Fatalf("served %d of 30", served.Load())
	}
}

func TestRefusalsAndLifecycle(t *testing.T) {
	ta := startTestAgent(t)
	ctx := context.Background()
	ta.start(t, "env-a", 2)
	ta.start(t, "env-b", 2)

	refusal := func(envID string) string {
		t.Helper()
		_, err := ta.conn.Invoke(ctx, envID, env.Invocation{RequestID: "r", Payload: []byte(`{"op":"noop"}`)})
		if err == nil {
			return ""
		}
		r, ok := wire.AsRefused(err)
		if !ok {
			t.Fatalf("invoke %s: %v", envID, err)
		}
		return r.Reason
	}
	if got := refusal("env-a"); got != "" {
		t.Fatalf("ready environment refused: %s", got)
	}
	if got := refusal("nope"); got != wire.ReasonUnknown {
		t.Errorf("unknown environment: %q", got)
	}

	// CPU above the threshold: refused until it falls again.
	ta.metrics.set(0.97, 0)
	poll.Until(t, 10*time.Second, func() error {
		if got := refusal("env-a"); got != wire.ReasonCPU {
			return fmt.Errorf("reason %q", got)
		}
		return nil
	})
	hb, _ := ta.hbs.get(ta.cfg.ID)
	ta.metrics.set(0.1, 7*1024+900) // m7i.large has 8 GiB: 98 % used
	poll.Until(t, 10*time.Second, func() error {
		if got := refusal("env-a"); got != wire.ReasonMemory {
			return fmt.Errorf("reason %q", got)
		}
		return nil
	})
	ta.metrics.set(0.1, 1024)
	poll.Until(t, 10*time.Second, func() error {
		if got := refusal("env-a"); got != "" {
			return fmt.Errorf("reason %q", got)
		}
		return nil
	})
	if hb.VCPU != 2 || hb.MemoryMB != 8192 || hb.Zone != "us-east-1a" || hb.CapacityProvider != "cp1" ||
		hb.InvokeNetwork != "unix" || hb.InvokeAddr != ta.cfg.Socket {
		t.Errorf("heartbeat %+v", hb)
	}

	// An environment that works shows CPU utilisation in heartbeats.
	poll.Until(t, 20*time.Second, func() error {
		res, err := ta.conn.Invoke(ctx, "env-b", env.Invocation{RequestID: "burn", Payload: []byte(`{"op":"oom","mb":128}`)})
		if err != nil || res.FunctionError != "" {
			return fmt.Errorf("burn: %s %v", res.Payload, err)
		}
		if u := ta.hbs.cpuOf("env-b"); u <= 0 {
			return errors.New("no CPU utilisation reported yet")
		}
		return nil
	})
	t.Logf("env-b peak CPU utilisation %.2f", ta.hbs.cpuOf("env-b"))

	// Another capacity provider's function is refused.
	_, err := ta.client.StartEnvironment(ctx, ta.cfg.ID, StartEnv{EnvID: "env-x", CapacityProvider: "cp2",
		CodeSha256: ta.sha, Spec: sleepySpec(2)})
	if err == nil {
		t.Error("environment of another capacity provider started")
	}
	// A failing init is reported with Lambda's error type.
	spec := sleepySpec(2)
	spec.Environment = map[string]string{"FAIL_INIT": "1"}
	_, err = ta.client.StartEnvironment(ctx, ta.cfg.ID, StartEnv{EnvID: "env-bad", CapacityProvider: "cp1",
		CodeSha256: ta.sha, Spec: spec})
	var ie *env.InitError
	if !errors.As(err, &ie) || ie.ErrorType != "Runtime.ExitError" {
		t.Errorf("failed init: %v", err)
	}

	// Stop drains: an invocation in flight finishes, new ones are refused.
	// Earlier invocations hold their slots until the runtime asks for its
	// next event, so wait for them to free before counting the slow one.
	poll.Until(t, 10*time.Second, func() error {
		hb, _ := ta.hbs.get(ta.cfg.ID)
		for _, e := range hb.Environments {
			if e.ID == "env-a" && e.InFlight == 0 {
				return nil
			}
		}
		return errors.New("earlier invocations still hold slots")
	})
	slow := make(chan error, 1)
	go func() {
		res, err := ta.conn.Invoke(ctx, "env-a", env.Invocation{RequestID: "slow", Payload: []byte(`{"op":"sleep","ms":500}`)})
		if err == nil && res.FunctionError != "" {
			err = fmt.Errorf("function error %s", res.Payload)
		}
		slow <- err
	}()
	poll.Until(t, 10*time.Second, func() error {
		hb, _ := ta.hbs.get(ta.cfg.ID)
		for _, e := range hb.Environments {
			if e.ID == "env-a" && e.InFlight == 1 {
				return nil
			}
		}
		return errors.New("not in flight")
	})
	stopped := make(chan error, 1)
	go func() { stopped <- ta.client.StopEnvironment(ctx, ta.cfg.ID, "env-a") }()
	poll.Until(t, 10*time.Second, func() error {
		if got := refusal("env-a"); got != wire.ReasonDraining && got != wire.ReasonUnknown {
			return fmt.Errorf("reason %q", got)
		}
		return nil
	})
	if err := <-slow; err != nil {
		t.Errorf("in-flight invocation during drain: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	ta.waitEnv(t, "env-a", "")
	if got := refusal("env-a"); got != wire.ReasonUnknown {
		t.Errorf("stopped environment: %q", got)
	}

	// A crashed runtime marks its environment failed.
	_, err = ta.conn.Invoke(ctx, "env-b", env.Invocation{RequestID: "crash", Payload: []byte(`{"op":"crash"}`)})
	if err != nil {
		t.Fatalf("crash invoke: %v", err)
	}
	ta.waitEnv(t, "env-b", EnvFailed)
	if got := refusal("env-b"); got != wire.ReasonUnknown {
		t.Errorf("failed environment: %q", got)
	}

	// Draining the instance ends its environments and refuses new ones.
	ta.start(t, "env-c", 2)
	hbd, err := ta.client.Drain(ctx, ta.cfg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if hbd.State != StateDraining || len(hbd.Environments) != 0 {
		t.Errorf("after drain: %+v", hbd)
	}
	if got := refusal("env-c"); got != wire.ReasonUnknown && got != wire.ReasonDraining {
		t.Errorf("after drain: %q", got)
	}
	if _, err := ta.client.StartEnvironment(ctx, ta.cfg.ID, StartEnv{EnvID: "env-d", CapacityProvider: "cp1",
		CodeSha256: ta.sha, Spec: sleepySpec(2)}); err == nil {
		t.Error("started an environment on a draining instance")
	}
}

func TestShutdownEndsRun(t *testing.T) {
	b, _ := testBus(t)
	sock, _ := os.MkdirTemp("", "inst")
	defer os.RemoveAll(sock)
	hbs := watchHeartbeats(t, b.Conn())
	cfg := Config{NATSURL: b.ClientURL(), NATSCreds: credsFile(t, "i-run"), ID: "i-run", CapacityProvider: "cp1", Type: "c7g.large", Zone: "us-east-1b",
		Socket: filepath.Join(sock, "s"), WorkDir: t.TempDir(), Heartbeat: 50 * time.Millisecond}
	started := time.Now()
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), cfg, Deps{Logger: testLogger(), Metrics: &fakeMetrics{}}) }()
	poll.Until(t, 10*time.Second, func() error {
		if _, ok := hbs.get("i-run"); !ok {
			return errors.New("no heartbeat")
		}
		return nil
	})
	// The alive stamp follows the heartbeats.
	var first time.Time
	poll.Until(t, 10*time.Second, func() error {
		at, ok := LastAlive(cfg.WorkDir)
		switch {
		case !ok:
			return errors.New("no alive stamp")
		case at.Before(started):
			return fmt.Errorf("alive stamp %v before the agent started (%v)", at, started)
		case first.IsZero():
			first = at
			return errors.New("waiting for the next heartbeat")
		case !at.After(first):
			return fmt.Errorf("alive stamp still %v", at)
		}
		return nil
	})
	if _, err := NewClient(b.Conn()).Shutdown(context.Background(), "i-run"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if hb, _ := hbs.get("i-run"); hb.State != StateTerminated {
			return fmt.Errorf("state %q", hb.State)
		}
		return nil
	})
}

func TestServesOverTCP(t *testing.T) {
	b, _ := testBus(t)
	cfg := Config{NATSURL: b.ClientURL(), NATSCreds: credsFile(t, "i-tcp"), ID: "i-tcp", CapacityProvider: "cp1", Type: "r7i.large", Zone: "us-east-1c",
		Listen: "127.0.0.1:0", WorkDir: t.TempDir(), Heartbeat: 50 * time.Millisecond}
	hbs := watchHeartbeats(t, b.Conn())
	a, err := Start(context.Background(), cfg, Deps{Logger: testLogger(), Metrics: &fakeMetrics{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var hb Heartbeat
	poll.Until(t, 10*time.Second, func() error {
		var ok bool
		if hb, ok = hbs.get("i-tcp"); !ok {
			return errors.New("no heartbeat")
		}
		return nil
	})
	if hb.InvokeNetwork != "tcp" || hb.MemoryMB != 16384 || hb.VCPU != 2 {
		t.Fatalf("heartbeat %+v", hb)
	}
	c, err := wire.Dial(context.Background(), hb.InvokeNetwork, hb.InvokeAddr, wireKey(t, cfg.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Invoke(context.Background(), "none", env.Invocation{RequestID: "r"})
	if r, ok := wire.AsRefused(err); !ok || r.Reason != wire.ReasonUnknown {
		t.Fatalf("err = %v", err)
	}
}

// TestPanicsDoNotStopTheAgent: a start command whose launch panics (here in
// the sandbox factory) is answered with an error and leaves no environment
// behind; a heartbeat round that panics (here in the host metrics) is
// skipped. The agent serves on: the next start and its invocations work, and
// heartbeats keep coming.
func TestPanicsDoNotStopTheAgent(t *testing.T) {
	const panicMB = 999
	ta := startTestAgent(t, func(d *Deps) {
		d.Sandboxes = func(cfg sandbox.Config, log *slog.Logger) (env.Sandbox, error) {
			if cfg.MemoryMB == panicMB {
				panic("the sandbox factory broke")
			}
			return env.DefaultSandboxes(cfg, log)
		}
	})
	spec := sleepySpec(1)
	spec.MemoryMB = panicMB
	_, err := ta.client.StartEnvironment(context.Background(), ta.cfg.ID,
		StartEnv{EnvID: "e-panic", CapacityProvider: "cp1", CodeSha256: ta.sha, Spec: spec})
	if err == nil || !strings.Contains(err.Error(), "the sandbox factory broke") {
		t.Fatalf("start whose launch panicked: %v", err)
	}
	ta.waitEnv(t, "e-panic", "")

	ta.start(t, "e-ok", 1)
	res, err := ta.conn.Invoke(context.Background(), "e-ok", env.Invocation{RequestID: "r1", Payload: []byte(`"hi"`)})
	if err != nil || string(res.Payload) != `"hi"` {
		t.Fatalf("invoke after the panic: %v %s", err, res.Payload)
	}

	ta.metrics.panics.Store(true)
	hb, _ := ta.hbs.get(ta.cfg.ID)
	poll.Until(t, 20*time.Second, func() error {
		if ta.metrics.panicked.Load() == 0 {
			return errors.New("no heartbeat round has sampled yet")
		}
		return nil
	})
	ta.metrics.panics.Store(false)
	poll.Until(t, 20*time.Second, func() error {
		if now, _ := ta.hbs.get(ta.cfg.ID); now.Seq <= hb.Seq+2 {
			return fmt.Errorf("heartbeat %d, want past %d", now.Seq, hb.Seq+2)
		}
		return nil
	})
}
