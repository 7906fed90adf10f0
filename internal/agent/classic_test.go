package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/sandbox"
	"github.com/shoal-dev/shoal/internal/wire"
)

// usageLog collects the usage events an agent records.
type usageLog struct {
	mu     sync.Mutex
	events []meter.Event
}

func (u *usageLog) Record(ev *meter.Event) {
	u.mu.Lock()
	u.events = append(u.events, *ev)
	u.mu.Unlock()
}

func (u *usageLog) byRequest(id string) []meter.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []meter.Event
	for _, ev := range u.events {
		if ev.RequestID == id {
			out = append(out, ev)
		}
	}
	return out
}

// startClassicAgent starts a classic agent on a connection it is given, as
// a host's process does, keyed by its credentials file.
func startClassicAgent(t *testing.T, keepTimeout time.Duration) (*testAgent, *usageLog) {
	t.Helper()
	b, sha := testBus(t)
	sock, err := os.MkdirTemp("", "classic")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	const id = "classic-h1"
	cfg := Config{ID: id, Classic: true, Host: "h1", Zone: "us-east-1a", NATSCreds: credsFile(t, id),
		Socket: filepath.Join(sock, "agent.sock"), WorkDir: t.TempDir(), Heartbeat: 50 * time.Millisecond,
		StopTimeout: 30 * time.Second, KeepTimeout: keepTimeout}
	hbs := watchHeartbeats(t, b.Conn())
	usage := &usageLog{}
	a, err := Start(context.Background(), cfg, Deps{Logger: testLogger(), NATS: b.Conn(), Usage: usage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	network, addr := a.InvokeAddr()
	if _, err := wire.Dial(context.Background(), network, addr, []byte("not the agent's key")); err == nil {
		t.Fatal("the classic agent's wire took a connection with another key")
	}
	conn, err := wire.Dial(context.Background(), network, addr, wireKey(t, id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testAgent{a: a, client: NewClient(b.Conn()), hbs: hbs, conn: conn, sha: sha, cfg: cfg}, usage
}

func (ta *testAgent) startClassic(t *testing.T, envID, initType string) (EnvStatus, error) {
	t.Helper()
	spec := sleepySpec(4) // a classic environment gets one slot whatever it asks
	spec.InitType = initType
	return ta.client.StartEnvironment(context.Background(), ta.cfg.ID,
		StartEnv{EnvID: envID, CodeSha256: ta.sha, Revision: "sleepy:1:k", Spec: spec})
}

// TestClassicAgentRunsOnDemandAndProvisioned: a host's classic agent runs
// on-demand and provisioned environments of one slot, reports the cold
// start's Init Duration as on-demand ones do, and meters each invocation
// with its compute type and nothing of an instance.
func TestClassicAgentRunsOnDemandAndProvisioned(t *testing.T) {
	ta, usage := startClassicAgent(t, time.Minute)
	for _, tc := range []struct {
		name, initType, compute string
		initReported            bool
	}{
		{"on-demand", env.InitOnDemand, meter.OnDemand, true},
		{"defaults to on-demand", "", meter.OnDemand, true},
		{"provisioned", env.InitProvisioned, meter.Provisioned, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			st, err := ta.startClassic(t, id, tc.initType)
			if err != nil {
				t.Fatal(err)
			}
			if st.Slots != 1 {
				t.Fatalf("slots %d, want 1", st.Slots)
			}
			for i := range 2 {
				req := fmt.Sprintf("%s-%d", id, i)
				res, err := ta.conn.Invoke(context.Background(), id, env.Invocation{RequestID: req, Payload: []byte(`{"op":"env"}`)})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(res.Payload), `"AWS_LAMBDA_INITIALIZATION_TYPE":"`+tc.compute+`"`) {
					t.Fatalf("the runtime's environment: %s", res.Payload)
				}
				if got := res.InitDuration > 0; got != (tc.initReported && i == 0) {
					t.Fatalf("invocation %d reports Init Duration %v", i, res.InitDuration)
				}
				evs := usage.byRequest(req)
				if len(evs) != 1 || evs[0].Compute != tc.compute || evs[0].CapacityProvider != "" || evs[0].Instance != "" {
					t.Fatalf("usage of %s: %+v, want one %s event", req, evs, tc.compute)
				}
			}
			hb := ta.a.heartbeat(StateRunning, false)
			found := false
			for _, e := range hb.Environments {
				if e.ID == id {
					found = e.InitType == tc.compute && e.Revision == "sleepy:1:k"
				}
			}
			if !hb.Classic || hb.Host != "h1" || !found {
				t.Fatalf("heartbeat %+v does not show environment %s as %s", hb, id, tc.compute)
			}
		})
	}
	vcpu, mem, n := ta.a.Allocated()
	if n != 3 || mem != 3*512 || vcpu != 3*sandbox.CPUsForMemory(512) {
		t.Fatalf("allocated %v vCPU, %d MiB, %d environments", vcpu, mem, n)
	}

	for _, tc := range []struct {
		name string
		req  StartEnv
	}{
		{"a capacity provider's", StartEnv{EnvID: "mi", CapacityProvider: "cp1", CodeSha256: ta.sha, Spec: sleepySpec(1)}},
		{"a Managed Instances one", StartEnv{EnvID: "mi", CodeSha256: ta.sha,
			Spec: func() env.Spec { s := sleepySpec(1); s.InitType = env.InitManagedInstances; return s }()}},
	} {
		if _, err := ta.client.StartEnvironment(context.Background(), ta.cfg.ID, tc.req); err == nil {
			t.Errorf("a classic agent started %s environment", tc.name)
		}
	}
}

// TestClassicAgentInitFailure: a failed init is answered with what the
// front needs to answer the invocation as one of its own: the platform's
// error names the request.
func TestClassicAgentInitFailure(t *testing.T) {
	ta, _ := startClassicAgent(t, time.Minute)
	spec := sleepySpec(1)
	spec.Environment = map[string]string{"FAIL_INIT": "1"}
	_, err := ta.client.StartEnvironment(context.Background(), ta.cfg.ID, StartEnv{EnvID: "bad", CodeSha256: ta.sha, Spec: spec})
	var ie *env.InitError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an init error", err)
	}
	if ie.ErrorType != "Runtime.ExitError" || !ie.Platform() || !strings.Contains(string(ie.ForRequest("r-1")), "RequestId: r-1") {
		t.Fatalf("init error %s platform %v answers %s", ie.ErrorType, ie.Platform(), ie.ForRequest("r-1"))
	}
}

// TestClassicAgentStopsWhatNobodyKeeps: the environments a front keeps live
// on; one nobody keeps (its front is gone) is stopped; keep answers which
// of the named ones the agent no longer serves.
func TestClassicAgentStopsWhatNobodyKeeps(t *testing.T) {
	ta, _ := startClassicAgent(t, time.Second)
	for _, id := range []string{"kept", "orphan"} {
		if _, err := ta.startClassic(t, id, env.InitOnDemand); err != nil {
			t.Fatal(err)
		}
	}
	// A heartbeat sent before the starts does not list them: orphan is
	// gone only from one sent after (a sequence number two past the last).
	hb0, _ := ta.hbs.get(ta.cfg.ID)
	stop := make(chan struct{})
	kept := make(chan error, 1)
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				kept <- nil
				return
			case <-tk.C:
				if gone, err := ta.client.Keep(context.Background(), ta.cfg.ID, []string{"kept"}); err != nil || len(gone) > 0 {
					kept <- fmt.Errorf("keep: gone %v, err %v", gone, err)
					return
				}
			}
		}
	}()
	poll.Until(t, 20*time.Second, func() error {
		hb, ok := ta.hbs.get(ta.cfg.ID)
		if !ok || hb.Seq <= hb0.Seq+1 {
			return errors.New("no heartbeat since the environments started")
		}
		for _, e := range hb.Environments {
			if e.ID == "orphan" {
				return fmt.Errorf("orphan is %s", e.State)
			}
		}
		return nil
	})
	close(stop)
	if err := <-kept; err != nil {
		t.Fatal(err)
	}
	ta.waitEnv(t, "kept", EnvReady)
	gone, err := ta.client.Keep(context.Background(), ta.cfg.ID, []string{"kept", "orphan", "never"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(gone, ",") != "orphan,never" {
		t.Fatalf("gone %v, want orphan and never", gone)
	}
	if _, err := ta.conn.Invoke(context.Background(), "orphan", env.Invocation{RequestID: "late"}); err == nil {
		t.Fatal("the stopped environment took an invocation")
	}
}
