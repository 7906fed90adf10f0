package controlplane

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/registry"
	"github.com/shoal-dev/shoal/internal/router"
	"github.com/shoal-dev/shoal/internal/wire"
)

// scrape GETs the handler and parses the answer with Prometheus' text parser.
func scrapeProm(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mfs
}

// sample returns the value of the series of name with exactly labels (a
// histogram's sample count), and whether there is one.
func promSample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// refusingAgent is an agent's invoke server that refuses every invocation
// with the reason in reason.
func refusingAgent(t *testing.T, reason *atomic.Value) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := wire.NewServer(wire.HandlerFunc(func(ctx context.Context, envID string, inv env.Invocation) (env.Result, error) {
		return env.Result{}, wire.Refused(reason.Load().(string), "refused by the test")
	}), nil, nil)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

type wireDialer struct{}

func (wireDialer) Conn(ctx context.Context, in fleet.Instance) (*wire.Conn, error) {
	return wire.Dial(ctx, in.InvokeNetwork, in.InvokeAddr, nil)
}

func TestFunctionMetrics(t *testing.T) {
	var reason atomic.Value
	reason.Store(wire.ReasonCPU)
	managed := router.NewManaged(wireDialer{})
	managed.Update([]fleet.Instance{{ID: "i-1", State: fleet.StateRunning, InvokeNetwork: "tcp",
		InvokeAddr:   refusingAgent(t, &reason),
		Environments: []fleet.EnvStatus{{ID: "e-1", Function: "mi", Version: "1", Slots: 4, State: "ready"}}}})
	managedThrottle := func(why string) func() (env.Result, error) {
		return func() (env.Result, error) {
			reason.Store(why)
			return managed.Invoke(context.Background(), "mi:1", env.Invocation{RequestID: "r"})
		}
	}
	ok := func(res env.Result) func() (env.Result, error) {
		return func() (env.Result, error) { return res, nil }
	}
	fail := func(err error) func() (env.Result, error) {
		return func() (env.Result, error) { return env.Result{}, err }
	}
	fn := &registry.Version{FunctionName: "fn", Version: "$LATEST"}
	mi := &registry.Version{FunctionName: "mi", Version: "1"}
	tests := []struct {
		name   string
		v      *registry.Version
		invoke func() (env.Result, error)
		metric string
		labels map[string]string
	}{
		{name: "success", v: fn, invoke: ok(env.Result{Duration: 20 * time.Millisecond}),
			metric: "shoal_function_invocations_total"},
		{name: "duration", v: fn, invoke: ok(env.Result{Duration: time.Second}),
			metric: "shoal_function_duration_seconds"},
		{name: "function error", v: fn, invoke: ok(env.Result{FunctionError: "Unhandled", Duration: time.Millisecond}),
			metric: "shoal_function_errors_total"},
		{name: "cold start", v: fn, invoke: ok(env.Result{Duration: time.Millisecond, InitDuration: 300 * time.Millisecond}),
			metric: "shoal_function_init_duration_seconds"},
		{name: "reserved concurrency throttle", v: fn,
			invoke: fail(awserr.Throttled(awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded, "Rate Exceeded.")),
			metric: "shoal_function_throttles_total", labels: map[string]string{"cause": "concurrency"}},
		{name: "service error", v: fn, invoke: fail(awserr.Service(errors.New("boom"), "The function could not be invoked.")),
			metric: "shoal_function_service_errors_total"},
		{name: "managed CPU throttle", v: mi, invoke: managedThrottle(wire.ReasonCPU),
			metric: "shoal_function_throttles_total", labels: map[string]string{"cause": "cpu"}},
		{name: "managed memory throttle", v: mi, invoke: managedThrottle(wire.ReasonMemory),
			metric: "shoal_function_throttles_total", labels: map[string]string{"cause": "memory"}},
		{name: "managed concurrency throttle", v: mi, invoke: managedThrottle(wire.ReasonConcurrency),
			metric: "shoal_function_throttles_total", labels: map[string]string{"cause": "concurrency"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMetrics()
			labels := map[string]string{"function": tc.v.FunctionName, "version": tc.v.Version}
			for k, v := range tc.labels {
				labels[k] = v
			}
			m.begin(tc.v)
			if got, _ := promSample(scrapeProm(t, m.handler()), "shoal_function_concurrent_executions",
				map[string]string{"function": tc.v.FunctionName, "version": tc.v.Version}); got != 1 {
				t.Errorf("concurrent executions during the invocation = %v, want 1", got)
			}
			res, err := tc.invoke()
			m.end(tc.v, res, err)
			mfs := scrapeProm(t, m.handler())
			if got, found := promSample(mfs, tc.metric, labels); got != 1 {
				t.Errorf("%s%v = %v (found %v), want 1", tc.metric, labels, got, found)
			}
			if got, _ := promSample(mfs, "shoal_function_concurrent_executions",
				map[string]string{"function": tc.v.FunctionName, "version": tc.v.Version}); got != 0 {
				t.Errorf("concurrent executions after = %v, want 0", got)
			}
			// Every cause has a series from the first invocation on, so rates start at 0.
			for _, cause := range throttleCauses {
				if _, found := promSample(mfs, "shoal_function_throttles_total",
					map[string]string{"function": tc.v.FunctionName, "version": tc.v.Version, "cause": cause}); !found {
					t.Errorf("no throttle series with cause %s", cause)
				}
			}
			// Lambda counts neither throttles nor service errors as invocations.
			inv, _ := promSample(mfs, "shoal_function_invocations_total", map[string]string{"function": tc.v.FunctionName, "version": tc.v.Version})
			if want := float64(promBool(err == nil)); inv != want {
				t.Errorf("invocations = %v, want %v", inv, want)
			}
		})
	}
}

func promBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestMetricsPruneDeletedVersions(t *testing.T) {
	m := newMetrics()
	a := &registry.Version{FunctionName: "a", Version: "1"}
	b := &registry.Version{FunctionName: "b", Version: "$LATEST"}
	live := []*registry.Version{a, b}
	m.versions = func() []*registry.Version { return live }
	for _, v := range live {
		m.begin(v)
		m.end(v, env.Result{Duration: time.Millisecond}, nil)
	}
	live = live[:1] // b is deleted
	mfs := scrapeProm(t, m.handler())
	if _, found := promSample(mfs, "shoal_function_invocations_total", map[string]string{"function": "a", "version": "1"}); !found {
		t.Error("the series of a live version was dropped")
	}
	if _, found := promSample(mfs, "shoal_function_invocations_total", map[string]string{"function": "b", "version": "$LATEST"}); found {
		t.Error("the series of a deleted version remain")
	}

	// A deleted version with an invocation under way keeps its series
	// until the invocation ends, so its gauge returns to 0, never below.
	m.begin(a)
	live = nil
	mfs = scrapeProm(t, m.handler())
	if got, _ := promSample(mfs, "shoal_function_concurrent_executions", map[string]string{"function": "a", "version": "1"}); got != 1 {
		t.Errorf("concurrent executions of a deleted version in flight = %v, want 1", got)
	}
	m.end(a, env.Result{Duration: time.Millisecond}, nil)
	mfs = scrapeProm(t, m.handler())
	if _, found := promSample(mfs, "shoal_function_invocations_total", map[string]string{"function": "a", "version": "1"}); found {
		t.Error("the series of a deleted version remain after its last invocation")
	}
	m.begin(a) // created again
	mfs = scrapeProm(t, m.handler())
	if got, _ := promSample(mfs, "shoal_function_concurrent_executions", map[string]string{"function": "a", "version": "1"}); got != 1 {
		t.Errorf("concurrent executions of a re-created version = %v, want 1", got)
	}
}

func TestMetricsInvokePathDoesNotAllocate(t *testing.T) {
	m := newMetrics()
	v := &registry.Version{FunctionName: "fn", Version: "7"}
	res := env.Result{Duration: 3 * time.Millisecond}
	m.begin(v)
	m.end(v, res, nil)
	if n := testing.AllocsPerRun(1000, func() {
		m.begin(v)
		m.end(v, res, nil)
	}); n != 0 {
		t.Errorf("begin+end allocate %v times per invocation, want 0", n)
	}
}

// BenchmarkMetricsInvoke is the metrics' cost per invocation, from many
// goroutines at once over a few versions.
func BenchmarkMetricsInvoke(b *testing.B) {
	m := newMetrics()
	vs := []*registry.Version{{FunctionName: "a", Version: "1"}, {FunctionName: "b", Version: "$LATEST"}, {FunctionName: "c", Version: "3"}}
	res := env.Result{Duration: 3 * time.Millisecond}
	var n atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		v := vs[int(n.Add(1))%len(vs)]
		for pb.Next() {
			m.begin(v)
			m.end(v, res, nil)
		}
	})
}

func TestFleetCollector(t *testing.T) {
	instances := []fleet.Instance{
		{ID: "i-1", CapacityProvider: "cp", Type: "m7i.large", Zone: "z1", State: fleet.StateRunning, VCPU: 2, MemoryMB: 8192,
			CPUUtilization: 0.5, MemoryUtilization: 0.25, NetworkRxBytes: 1000, NetworkTxBytes: 2000, OpenFDs: 42,
			Environments: []fleet.EnvStatus{
				{ID: "e-1", Function: "f", Version: "1", Slots: 10, PeakInFlight: 7, State: "ready", VCPU: 1, MemoryMB: 2048,
					CPUUtilization: 0.8, MemoryUtilization: 0.1},
				{ID: "e-2", Function: "f", Version: "1", Slots: 10, State: "initializing"},
			}},
		{ID: "i-2", CapacityProvider: "cp", Type: "m7i.large", Zone: "z2", State: fleet.StatePending, VCPU: 2, MemoryMB: 8192},
	}
	m := newMetrics()
	m.reg.MustRegister(&fleetCollector{instances: func() []fleet.Instance { return instances }})
	mfs := scrapeProm(t, m.handler())
	il := map[string]string{"capacity_provider": "cp", "instance": "i-1", "instance_type": "m7i.large", "zone": "z1"}
	el := map[string]string{"capacity_provider": "cp", "function": "f", "version": "1", "instance": "i-1", "environment": "e-1"}
	tests := []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"shoal_instance_cpu_utilization_ratio", il, 0.5},
		{"shoal_instance_memory_utilization_ratio", il, 0.25},
		{"shoal_instance_vcpu_allocated", il, 1},
		{"shoal_instance_vcpu_available", il, 1},
		{"shoal_instance_memory_allocated_bytes", il, 2048 << 20},
		{"shoal_instance_memory_available_bytes", il, 6144 << 20},
		{"shoal_instance_network_receive_bytes_total", il, 1000},
		{"shoal_instance_network_transmit_bytes_total", il, 2000},
		{"shoal_instance_open_fds", il, 42},
		{"shoal_instance_environments", withLabel(il, "state", "ready"), 1},
		{"shoal_instance_environments", withLabel(il, "state", "initializing"), 1},
		{"shoal_instance_environments", withLabel(il, "state", "draining"), 0},
		{"shoal_instances", map[string]string{"capacity_provider": "cp", "instance_type": "m7i.large", "zone": "z2", "state": "pending"}, 1},
		{"shoal_execution_environments", map[string]string{"capacity_provider": "cp", "function": "f", "version": "1", "state": "ready"}, 1},
		{"shoal_execution_environment_concurrency", el, 7},
		{"shoal_execution_environment_concurrency_limit", el, 10},
		{"shoal_execution_environment_cpu_utilization_ratio", el, 0.8},
		{"shoal_execution_environment_memory_utilization_ratio", el, 0.1},
	}
	for _, tc := range tests {
		if got, found := promSample(mfs, tc.metric, tc.labels); !found || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.metric, tc.labels, got, found, tc.want)
		}
	}
	if _, found := promSample(mfs, "shoal_instance_cpu_utilization_ratio",
		map[string]string{"capacity_provider": "cp", "instance": "i-2", "instance_type": "m7i.large", "zone": "z2"}); found {
		t.Error("a pending instance has utilisation figures")
	}
}

func TestHostCollector(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	hosts := []fleet.HostStatus{
		{Name: "h1", Zone: "z1", VCPU: 16, MemoryMB: 65536, UsedVCPU: 4, UsedMemoryMB: 16384, Instances: 2,
			LastHeartbeat: now.Add(-1500 * time.Millisecond), State: fleet.HostUp},
		{Name: "h2", Zone: "z2", VCPU: 8, MemoryMB: 32768, LastHeartbeat: now.Add(-time.Minute), State: fleet.HostLost},
	}
	m := newMetrics()
	m.reg.MustRegister(&hostCollector{hosts: func() []fleet.HostStatus { return hosts }, now: func() time.Time { return now },
		leading: func() (string, bool) { return "n1", true }})
	mfs := scrapeProm(t, m.handler())
	h1 := map[string]string{"host": "h1", "zone": "z1"}
	h2 := map[string]string{"host": "h2", "zone": "z2"}
	for _, tc := range []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"shoal_host_vcpus", h1, 16},
		{"shoal_host_vcpus_used", h1, 4},
		{"shoal_host_memory_bytes", h1, 65536 << 20},
		{"shoal_host_memory_used_bytes", h1, 16384 << 20},
		{"shoal_host_instances", h1, 2},
		{"shoal_host_up", h1, 1},
		{"shoal_host_heartbeat_age_seconds", h1, 1.5},
		{"shoal_host_up", h2, 0},
		{"shoal_host_heartbeat_age_seconds", h2, 60},
		{"shoal_cluster_leader", map[string]string{"node": "n1"}, 1},
	} {
		if got, found := promSample(mfs, tc.metric, tc.labels); !found || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.metric, tc.labels, got, found, tc.want)
		}
	}
}

func withLabel(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range m {
		out[kk] = vv
	}
	return out
}

func TestScrapeTargets(t *testing.T) {
	m := newMetrics()
	m.self = "127.0.0.1:9100"
	m.instances = func() []fleet.Instance {
		return []fleet.Instance{
			{ID: "i-1", CapacityProvider: "cp", Type: "m7i.large", Zone: "z1", State: fleet.StateRunning, MetricsAddr: "127.0.0.1:4001"},
			{ID: "i-2", CapacityProvider: "cp", Type: "m7i.large", Zone: "z2", State: fleet.StatePending},
			{ID: "i-3", CapacityProvider: "cp", Type: "m7i.large", Zone: "z3", State: fleet.StateLost, MetricsAddr: "127.0.0.1:4003"},
		}
	}
	rec := httptest.NewRecorder()
	m.scrapeTargets().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	want := `[{"targets":["127.0.0.1:9100"],"labels":{"component":"control-plane"}},{"targets":["127.0.0.1:4001"],"labels":{"capacity_provider":"cp","instance_id":"i-1","instance_type":"m7i.large","zone":"z1"}}]` + "\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("targets:\n got %s\nwant %s", got, want)
	}
}
