package remote

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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/logs"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/pki"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/router"
	"github.com/shoal-dev/shoal/internal/testfn"
)

// These tests run real classic agents (in this process, as a host runs
// them) serving the aws-lambda-go test function over TLS, and a Placer as
// a front that is no host.

var goFnZip []byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shoal-remote-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goFnZip, err = testfn.GoZip(dir, "../../test/testdata/gofn")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var testSecret = bus.Secret("a test secret of thirty-two bytes")

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// usageLog collects usage events.
type usageLog struct {
	mu     sync.Mutex
	events []meter.Event
}

func (u *usageLog) Record(ev *meter.Event) {
	u.mu.Lock()
	u.events = append(u.events, *ev)
	u.mu.Unlock()
}

func (u *usageLog) InvocationDone(spec *env.Spec, id string, start time.Time, r *env.Result) {
	compute := meter.OnDemand
	if spec.InitType == env.InitProvisioned {
		compute = meter.Provisioned
	}
	u.Record(env.UsageEvent(spec, id, start, r, compute))
}

func (u *usageLog) of(requestID string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, ev := range u.events {
		if ev.RequestID == requestID {
			out = append(out, ev.Compute)
		}
	}
	return out
}

// lab is a bus, hosts with classic agents, and a front's Placer.
type lab struct {
	b        *bus.Bus
	sha      string
	ca       *pki.Authority
	agents   map[string]*agent.Agent
	hostUse  *usageLog // what the hosts' agents meter
	frontUse *usageLog // what the front meters
	p        *Placer
	local    sync.Mutex // guards started and hosts
	started  []string   // environments started in the front's process
	hosts    []fleet.HostStatus
}

func (l *lab) hostList() []fleet.HostStatus {
	l.local.Lock()
	defer l.local.Unlock()
	return append([]fleet.HostStatus(nil), l.hosts...)
}

func newLab(t *testing.T, hosts ...fleet.HostStatus) *lab {
	t.Helper()
	ctx := context.Background()
	b, err := bus.Start(ctx, bus.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
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
	if _, err := obj.PutBytes(ctx, hex.EncodeToString(sum[:]), goFnZip); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.New(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{b: b, sha: base64.StdEncoding.EncodeToString(sum[:]), ca: ca, agents: map[string]*agent.Agent{},
		hostUse: &usageLog{}, frontUse: &usageLog{}, hosts: hosts}
	for _, h := range hosts {
		a, err := Serve(ctx, ServeConfig{Host: h.Name, Zone: h.Zone, Advertise: "127.0.0.1", WorkDir: t.TempDir(),
			Heartbeat: 100 * time.Millisecond},
			ServeDeps{NATS: b.Conn(), Secret: testSecret, CA: ca, Usage: l.hostUse, Logger: testLogger()}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		l.agents[h.Name] = a
	}
	l.p = l.front(t)
	return l
}

// front starts a Placer, as a front that is no host.
func (l *lab) front(t *testing.T) *Placer {
	t.Helper()
	cert, err := l.ca.Issue("node.front", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pool := fleet.NewPool(func(id string) []byte {
		c, err := testSecret.CredentialsFor(bus.AgentIdentity(id))
		if err != nil {
			return nil
		}
		return c.WireKey()
	})
	pool.UseTLS(l.ca.ClientConfig(cert))
	t.Cleanup(pool.Close)
	p, err := New(Config{Heartbeat: 100 * time.Millisecond, KeepInterval: 200 * time.Millisecond}, Deps{
		NATS: l.b.Conn(), Pool: pool, Hosts: l.hostList,
		Start: func(ctx context.Context, tg *router.Target, spec env.Spec) (router.Env, error) {
			l.local.Lock()
			l.started = append(l.started, tg.Function)
			l.local.Unlock()
			return nil, errors.New("this front runs no environment of its own here")
		},
		Usage: l.frontUse, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	poll.Until(t, 10*time.Second, func() error {
		if n := len(p.Agents()); n != len(l.hostList()) {
			return fmt.Errorf("the front hears of %d agents", n)
		}
		return nil
	})
	return p
}

func hostStatus(name string, vcpu, mem int) fleet.HostStatus {
	return fleet.HostStatus{Name: name, Zone: "us-east-1a", VCPU: vcpu, MemoryMB: mem, State: fleet.HostUp}
}

func (l *lab) target(name string, mutate ...func(*env.Spec)) *router.Target {
	spec := env.Spec{FunctionName: name, Version: "1", Runtime: "provided.al2023", Handler: "bootstrap", MemoryMB: 256,
		Timeout: 10 * time.Second, AccountID: "123456789012", MaxConcurrency: 1, InitType: env.InitOnDemand}
	for _, m := range mutate {
		m(&spec)
	}
	return &router.Target{Key: name + ":1:k", Function: name, Version: "1", CodeSha256: l.sha, Spec: spec}
}

// hostOf is the host whose agent runs environment id, "" when none does.
func (l *lab) hostOf(id string) string {
	for host, a := range l.agents {
		_, _, n := a.Allocated()
		if n == 0 {
			continue
		}
		ids, _ := agent.NewClient(l.b.Conn()).Keep(context.Background(), AgentID(host), []string{id})
		if len(ids) == 0 {
			return host
		}
	}
	return ""
}

func isDone(e router.Env) bool {
	select {
	case <-e.Done():
		return true
	default:
		return false
	}
}

// TestPlacerRunsEnvironmentsOnHosts: a front that is no host starts its
// on-demand environments on the host with the most room; they serve its
// invocations over the wire, cold then warm; a crash answers
// Runtime.ExitError and ends the environment; Close stops it on its host.
func TestPlacerRunsEnvironmentsOnHosts(t *testing.T) {
	l := newLab(t, hostStatus("h1", 4, 4096), hostStatus("h2", 4, 8192))
	tg := l.target("fn")
	e, err := l.p.Start(context.Background(), tg, tg.Spec)
	if err != nil {
		t.Fatal(err)
	}
	re := e.(*remoteEnv)
	if re.host != "h2" || l.hostOf(re.id) != "h2" {
		t.Fatalf("placed on %s (running on %q), want h2, the host with the most room", re.host, l.hostOf(re.id))
	}
	for i, cold := range []bool{true, false} {
		res, err := e.Invoke(context.Background(), env.Invocation{RequestID: fmt.Sprint("r", i), Payload: []byte(`{"op":"env"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(res.Payload), `"AWS_LAMBDA_INITIALIZATION_TYPE":"on-demand"`) || (res.InitDuration > 0) != cold {
			t.Fatalf("invocation %d: init %v, answer %s", i, res.InitDuration, res.Payload)
		}
		if got := l.hostUse.of(fmt.Sprint("r", i)); len(got) != 1 || got[0] != meter.OnDemand {
			t.Fatalf("the host metered invocation %d as %v", i, got)
		}
	}
	res, err := e.Invoke(context.Background(), env.Invocation{RequestID: "crash", Payload: []byte(`{"op":"crash"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorType != "Runtime.ExitError" || !res.Replace || !isDone(e) {
		t.Fatalf("crash: %s replace %v done %v", res.ErrorType, res.Replace, isDone(e))
	}
	if _, err := e.Invoke(context.Background(), env.Invocation{RequestID: "after"}); !errors.Is(err, env.ErrClosed) {
		t.Fatalf("invoking the crashed environment: %v, want ErrClosed", err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := l.hostOf(re.id); h != "" {
		t.Fatalf("the closed environment still runs on %s", h)
	}
	l.local.Lock()
	defer l.local.Unlock()
	if len(l.started) != 0 {
		t.Fatalf("the front started environments of its own: %v", l.started)
	}
}

// TestPlacerEndsEnvironmentsThatAreGone: an environment's Done closes when
// its agent stops serving it, and when its agent goes away; the next
// environment goes to a host that is left.
func TestPlacerEndsEnvironmentsThatAreGone(t *testing.T) {
	l := newLab(t, hostStatus("h1", 4, 8192), hostStatus("h2", 4, 4096))
	tg := l.target("fn")
	var envs []router.Env
	for range 2 {
		e, err := l.p.Start(context.Background(), tg, tg.Spec)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, e)
	}
	for _, e := range envs {
		if h := e.(*remoteEnv).host; h != "h1" {
			t.Fatalf("placed on %s, want h1", h)
		}
	}
	// Stopped behind the front's back: the keep answers it gone.
	if err := agent.NewClient(l.b.Conn()).StopEnvironment(context.Background(), AgentID("h1"), envs[0].(*remoteEnv).id); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if !isDone(envs[0]) {
			return errors.New("the stopped environment is not done")
		}
		return nil
	})
	if isDone(envs[1]) {
		t.Fatal("the other environment ended too")
	}
	// Its host's agent goes away.
	l.agents["h1"].Close()
	poll.Until(t, 10*time.Second, func() error {
		if !isDone(envs[1]) {
			return errors.New("the environment of the agent that went away is not done")
		}
		return nil
	})
	l.local.Lock()
	l.hosts = l.hosts[1:]
	l.local.Unlock()
	e, err := l.p.Start(context.Background(), tg, tg.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if h := e.(*remoteEnv).host; h != "h2" {
		t.Fatalf("placed on %s, want h2, the host left", h)
	}
	if _, err := e.Invoke(context.Background(), env.Invocation{RequestID: "r"}); err != nil {
		t.Fatal(err)
	}
}

// TestPlacerInitFailureIsMeteredOnce: an on-demand environment whose init
// fails on a host answers the invocation that started it as one in this
// process would, metered once, by the front.
func TestPlacerInitFailureIsMeteredOnce(t *testing.T) {
	l := newLab(t, hostStatus("h1", 4, 8192))
	tg := l.target("bad", func(s *env.Spec) { s.Environment = map[string]string{"FAIL_INIT": "1"} })
	_, err := l.p.Start(context.Background(), tg, tg.Spec)
	var ie *env.InitError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an init error", err)
	}
	for range 2 {
		res := ie.Answer(env.Invocation{RequestID: "r-init"})
		if res.ErrorType != "Runtime.ExitError" || !strings.Contains(string(res.Payload), "RequestId: r-init") ||
			res.InitDuration <= 0 || res.BilledDuration <= 0 {
			t.Fatalf("answer %+v %s", res, res.Payload)
		}
	}
	if got := l.frontUse.of("r-init"); len(got) != 1 || got[0] != meter.OnDemand {
		t.Fatalf("the front metered the failed init as %v, want once on-demand", got)
	}
	if got := l.hostUse.of("r-init"); len(got) != 0 {
		t.Fatalf("the host metered it too: %v", got)
	}
}

// TestPlacerSharesProvisioned: a provisioned environment placed on a host
// serves any front's invocations through Invoke, one at a time: another
// front's invocation while it is busy finds none free (its agent refuses).
func TestPlacerSharesProvisioned(t *testing.T) {
	l := newLab(t, hostStatus("h1", 4, 8192))
	other := l.front(t)
	tg := l.target("pc", func(s *env.Spec) { s.InitType = env.InitProvisioned })
	e, err := l.p.Start(context.Background(), tg, tg.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if !l.p.Shares(e) {
		t.Fatal("the provisioned environment on a host is not shared")
	}
	poll.Until(t, 10*time.Second, func() error {
		for _, p := range []*Placer{l.p, other} {
			if !(*p.sharedKeys.Load())[router.RouteKey(tg.Function, tg.Version, tg.Key)] {
				return errors.New("not routed to yet")
			}
		}
		return nil
	})
	busy := make(chan error, 1)
	go func() {
		_, ok, err := l.p.Invoke(context.Background(), tg, env.Invocation{RequestID: "slow", Payload: []byte(`{"op":"sleep","ms":2000}`)})
		if !ok {
			err = errors.New("no provisioned environment took the first invocation")
		}
		busy <- err
	}()
	poll.Until(t, 10*time.Second, func() error {
		hb, err := agent.NewClient(l.b.Conn()).Status(context.Background(), AgentID("h1"))
		if err != nil {
			return err
		}
		for _, es := range hb.Environments {
			if es.ID == e.(*remoteEnv).id && es.InFlight == 1 {
				return nil
			}
		}
		return errors.New("the first invocation is not running yet")
	})
	for _, p := range []*Placer{l.p, other} {
		if _, ok, _ := p.Invoke(context.Background(), tg, env.Invocation{RequestID: "probe"}); ok {
			t.Fatal("an invocation ran while the only provisioned environment was busy")
		}
	}
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	res, ok, err := other.Invoke(context.Background(), tg, env.Invocation{RequestID: "free", Payload: []byte(`{"op":"env"}`)})
	if !ok || err != nil || !strings.Contains(string(res.Payload), `"AWS_LAMBDA_INITIALIZATION_TYPE":"provisioned-concurrency"`) ||
		res.InitDuration != 0 {
		t.Fatalf("ok %v, err %v, init %v, answer %s", ok, err, res.InitDuration, res.Payload)
	}
	if got := l.hostUse.of("free"); len(got) != 1 || got[0] != meter.Provisioned {
		t.Fatalf("metered as %v, want once provisioned", got)
	}
	if _, ok, _ := l.p.Invoke(context.Background(), l.target("other"), env.Invocation{}); ok {
		t.Fatal("an invocation of another function ran on the provisioned environment")
	}
}

// TestPlacerSpreadsProvisioned: the provisioned environments of one
// configuration, started at once, go one to each host with room before a
// second goes to any, the roomiest first; an on-demand one still goes to
// the host with the most room.
func TestPlacerSpreadsProvisioned(t *testing.T) {
	l := newLab(t, hostStatus("h1", 8, 16384), hostStatus("h2", 4, 4096), hostStatus("h3", 1, 128))
	tg := l.target("pc", func(s *env.Spec) { s.InitType = env.InitProvisioned })
	var wg sync.WaitGroup
	hosts := make([]string, 2)
	errs := make([]error, 2)
	for i := range hosts {
		wg.Go(func() {
			e, err := l.p.Start(context.Background(), tg, tg.Spec)
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(func() { e.Close(context.Background()) })
			hosts[i] = e.(*remoteEnv).host
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(hosts)
	if hosts[0] != "h1" || hosts[1] != "h2" {
		t.Fatalf("provisioned environments on %v, want one on h1 and one on h2 (h3 has no room)", hosts)
	}
	// A third: h1 and h2 hold one each, h3 has no room: the roomier of h1, h2.
	e, err := l.p.Start(context.Background(), tg, tg.Spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	if h := e.(*remoteEnv).host; h != "h1" {
		t.Fatalf("the third provisioned environment is on %s, want h1", h)
	}
	od := l.target("od")
	e, err = l.p.Start(context.Background(), od, od.Spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	if h := e.(*remoteEnv).host; h != "h1" {
		t.Fatalf("the on-demand environment is on %s, want h1, the host with the most room", h)
	}
}
