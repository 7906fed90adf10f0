package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/registry"
	"github.com/shoal-dev/shoal/internal/router"
	"github.com/shoal-dev/shoal/internal/wire"
)

// Throttle causes, the values of the cause label: Lambda's ConcurrencyThrottles,
// CPUThrottles and MemoryThrottles.
const (
	causeConcurrency = wire.ReasonConcurrency
	causeCPU         = wire.ReasonCPU
	causeMemory      = wire.ReasonMemory
)

var throttleCauses = [...]string{causeConcurrency, causeCPU, causeMemory}

// Buckets of the duration histograms, in seconds: from a warm millisecond to
// Lambda's 15-minute limit, and up to Managed Instances' init limit (130 s).
var (
	durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900}
	initBuckets     = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 130}
)

// serverMetrics is the control plane's Prometheus registry: per function and
// version invocations, errors, throttles by cause, durations and concurrent
// executions, and the Managed Instances fleet as the scaler sees it.
//
// The invoke path costs two lock-free map reads and a few atomic adds: the
// labelled children of each version are made once and kept in an immutable
// map that is replaced (under mu) when a version is first seen or pruned.
type serverMetrics struct {
	reg *prometheus.Registry
	// versions lists the registry's versions, so that the series of deleted
	// ones are dropped at scrape time; nil keeps every series.
	versions func() []*registry.Version
	// instances lists the Managed Instances fleet; nil without one.
	instances func() []fleet.Instance
	// self is the address the control plane serves its own /metrics on ("" for
	// none): the first scrape target.
	self string

	invocations, errors, serviceErrors *prometheus.CounterVec
	throttles                          *prometheus.CounterVec
	duration, initDuration             *prometheus.HistogramVec

	children atomic.Pointer[map[versionKey]*versionMetrics]
	mu       sync.Mutex // serialises replacements of children
}

type versionKey struct{ function, version string }

// versionMetrics are one version's labelled children.
type versionMetrics struct {
	invocations, errors, serviceErrors prometheus.Counter
	throttles                          [len(throttleCauses)]prometheus.Counter
	duration, initDuration             prometheus.Observer
	// inFlight counts the version's invocations under way; a collector
	// reads it at scrape time (shoal_function_concurrent_executions).
	inFlight atomic.Int64
}

func newServerMetrics(s *Server) *serverMetrics {
	m := newMetrics()
	if s != nil && s.reg != nil {
		m.versions = func() []*registry.Version { return s.reg.ListFunctions(context.Background(), true) }
	}
	if s != nil && s.managed != nil {
		m.instances = s.managed.fleet.Instances
		m.reg.MustRegister(&fleetCollector{instances: m.instances})
	}
	if s != nil && s.managed != nil && s.managed.cluster != nil {
		mp := s.managed
		m.reg.MustRegister(&hostCollector{hosts: mp.cluster.Hosts, now: s.clock.Now, leading: func() (string, bool) {
			if mp.lease == nil {
				return hostName(s.cfg.Cluster.Node), true
			}
			return hostName(s.cfg.Cluster.Node), mp.lease.leader() == hostName(s.cfg.Cluster.Node)
		}})
	}
	if s != nil && s.meter != nil {
		m.reg.MustRegister(s.meter.Collectors()...)
	}
	return m
}

// newMetrics returns the function metrics and the process's own.
func newMetrics() *serverMetrics {
	fv := []string{"function", "version"}
	m := &serverMetrics{
		reg: prometheus.NewRegistry(),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_function_invocations_total",
			Help: "Invocations: invocations that ran the function, successful or ending in a function error (throttles excluded)."}, fv),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_function_errors_total",
			Help: "Errors: invocations that ended in a function error (X-Amz-Function-Error)."}, fv),
		serviceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_function_service_errors_total",
			Help: "Invocations answered with a service error (5xx) instead of running."}, fv),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_function_throttles_total",
			Help: "Throttles: invocations answered 429, by cause (ConcurrencyThrottles, CPUThrottles, MemoryThrottles)."},
			append(fv, "cause")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shoal_function_duration_seconds",
			Help: "Duration: the time the function's handler ran.", Buckets: durationBuckets}, fv),
		initDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shoal_function_init_duration_seconds",
			Help: "Init Duration of the invocations that cold-started an environment.", Buckets: initBuckets}, fv),
	}
	empty := map[versionKey]*versionMetrics{}
	m.children.Store(&empty)
	m.reg.MustRegister(m.invocations, m.errors, m.serviceErrors, m.throttles, m.duration, m.initDuration,
		concurrentCollector{m}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		panicsCollector())
	return m
}

// of returns the children of v, making them on first use.
func (m *serverMetrics) of(v *registry.Version) *versionMetrics {
	k := versionKey{v.FunctionName, v.Version}
	if c := (*m.children.Load())[k]; c != nil {
		return c
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.children.Load()
	if c := old[k]; c != nil {
		return c
	}
	c := &versionMetrics{
		invocations:   m.invocations.WithLabelValues(k.function, k.version),
		errors:        m.errors.WithLabelValues(k.function, k.version),
		serviceErrors: m.serviceErrors.WithLabelValues(k.function, k.version),
		duration:      m.duration.WithLabelValues(k.function, k.version),
		initDuration:  m.initDuration.WithLabelValues(k.function, k.version),
	}
	for i, cause := range throttleCauses {
		c.throttles[i] = m.throttles.WithLabelValues(k.function, k.version, cause)
	}
	next := make(map[versionKey]*versionMetrics, len(old)+1)
	for kk, vv := range old {
		next[kk] = vv
	}
	next[k] = c
	m.children.Store(&next)
	return c
}

// begin counts an invocation of v as executing.
func (m *serverMetrics) begin(v *registry.Version) {
	m.of(v).inFlight.Add(1)
}

// end records the outcome of an invocation of v: its result, or err (a
// throttle, a service error) when there is none.
func (m *serverMetrics) end(v *registry.Version, res env.Result, err error) {
	c := m.of(v)
	c.inFlight.Add(-1)
	if err != nil {
		var e *awserr.Error
		switch {
		case errors.As(err, &e) && e.Code == awserr.CodeTooManyRequests:
			c.throttles[causeIndex(router.ThrottleCause(err))].Inc()
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			// The caller went away: neither a result nor a failure of shoal's.
		default:
			c.serviceErrors.Inc()
		}
		return
	}
	c.invocations.Inc()
	if res.FunctionError != "" {
		c.errors.Inc()
	}
	c.duration.Observe(res.Duration.Seconds())
	if res.InitDuration > 0 {
		c.initDuration.Observe(res.InitDuration.Seconds())
	}
}

// causeIndex maps a throttle cause to its index in throttleCauses; the
// throttles of the on-demand router (account and reserved concurrency) have
// none and count as concurrency.
func causeIndex(cause string) int {
	switch cause {
	case causeCPU:
		return 1
	case causeMemory:
		return 2
	}
	return 0
}

// prune drops the series of versions the registry no longer has, once
// they have no invocation under way.
func (m *serverMetrics) prune() {
	if m.versions == nil {
		return
	}
	live := map[versionKey]bool{}
	for _, v := range m.versions() {
		live[versionKey{v.FunctionName, v.Version}] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.children.Load()
	var gone []versionKey
	for k, c := range old {
		if !live[k] && c.inFlight.Load() == 0 {
			gone = append(gone, k)
		}
	}
	if len(gone) == 0 {
		return
	}
	next := make(map[versionKey]*versionMetrics, len(old))
	for k, c := range old {
		next[k] = c
	}
	for _, k := range gone {
		delete(next, k)
	}
	m.children.Store(&next)
	for _, k := range gone {
		l := prometheus.Labels{"function": k.function, "version": k.version}
		for _, vec := range []interface {
			DeletePartialMatch(prometheus.Labels) int
		}{m.invocations, m.errors, m.serviceErrors, m.throttles, m.duration, m.initDuration} {
			vec.DeletePartialMatch(l)
		}
	}
}

var descConcurrent = prometheus.NewDesc("shoal_function_concurrent_executions",
	"ConcurrentExecutions: invocations of the version in flight.", []string{"function", "version"}, nil)

// concurrentCollector reads the versions' in-flight counters at scrape time.
type concurrentCollector struct{ m *serverMetrics }

func (c concurrentCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descConcurrent }

func (c concurrentCollector) Collect(ch chan<- prometheus.Metric) {
	for k, v := range *c.m.children.Load() {
		ch <- prometheus.MustNewConstMetric(descConcurrent, prometheus.GaugeValue, float64(v.inFlight.Load()), k.function, k.version)
	}
}

// handler serves the metrics in Prometheus' text format.
func (m *serverMetrics) handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.prune()
		h.ServeHTTP(w, r)
	})
}

// scrapeTargets serves the metrics endpoints to scrape in the format of
// Prometheus' HTTP service discovery (http_sd_configs): the control plane's own
// (labelled component="control-plane"), then one per running or draining
// instance's agent, labelled as the fleet metrics are.
func (m *serverMetrics) scrapeTargets() http.Handler {
	type group struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		groups := []group{}
		if m.self != "" {
			groups = append(groups, group{Targets: []string{m.self}, Labels: map[string]string{"component": "control-plane"}})
		}
		if m.instances != nil {
			for _, in := range m.instances() {
				if in.MetricsAddr == "" || (in.State != fleet.StateRunning && in.State != fleet.StateDraining) {
					continue
				}
				groups = append(groups, group{Targets: []string{in.MetricsAddr}, Labels: map[string]string{
					"capacity_provider": in.CapacityProvider, "instance_id": in.ID, "instance_type": in.Type, "zone": in.Zone}})
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(groups)
	})
}

// fleetCollector exports the Managed Instances fleet on every scrape from the
// same fleet.Instance records the scaler decides on (fleet.Local.Instances):
// per instance the capacity provider metrics of Lambda Managed Instances,
// per environment its concurrency, limit and utilisation.
type fleetCollector struct {
	instances func() []fleet.Instance
}

var (
	instanceLabels = []string{"capacity_provider", "instance", "instance_type", "zone"}
	envLabels      = []string{"capacity_provider", "function", "version", "instance", "environment"}

	descInstances = prometheus.NewDesc("shoal_instances",
		"Instances of each capacity provider, by type, zone and state.",
		[]string{"capacity_provider", "instance_type", "zone", "state"}, nil)
	descCPU = prometheus.NewDesc("shoal_instance_cpu_utilization_ratio",
		"CPUUtilization: CPU time the instance used over its last heartbeat interval, as a share of its vCPUs.", instanceLabels, nil)
	descMem = prometheus.NewDesc("shoal_instance_memory_utilization_ratio",
		"MemoryUtilization: memory in use as a share of the instance's memory.", instanceLabels, nil)
	descVCPUAvail = prometheus.NewDesc("shoal_instance_vcpu_available",
		"vCPUAvailable: vCPUs of the instance not allocated to execution environments.", instanceLabels, nil)
	descVCPUAlloc = prometheus.NewDesc("shoal_instance_vcpu_allocated",
		"vCPUAllocated: vCPUs of the instance allocated to execution environments.", instanceLabels, nil)
	descMemAvail = prometheus.NewDesc("shoal_instance_memory_available_bytes",
		"MemoryAvailable: memory of the instance not allocated to execution environments.", instanceLabels, nil)
	descMemAlloc = prometheus.NewDesc("shoal_instance_memory_allocated_bytes",
		"MemoryAllocated: memory of the instance allocated to execution environments.", instanceLabels, nil)
	descRx = prometheus.NewDesc("shoal_instance_network_receive_bytes_total",
		"Bytes the instance's agent received on its invoke connections.", instanceLabels, nil)
	descTx = prometheus.NewDesc("shoal_instance_network_transmit_bytes_total",
		"Bytes the instance's agent sent on its invoke connections.", instanceLabels, nil)
	descFDs = prometheus.NewDesc("shoal_instance_open_fds",
		"File descriptors open in the instance's agent and environments.", instanceLabels, nil)
	descInstEnvs = prometheus.NewDesc("shoal_instance_environments",
		"Execution environments on the instance, by state.", append(instanceLabels[:len(instanceLabels):len(instanceLabels)], "state"), nil)

	descEnvs = prometheus.NewDesc("shoal_execution_environments",
		"ExecutionEnvironmentCount: execution environments of a version, by state.",
		[]string{"capacity_provider", "function", "version", "state"}, nil)
	descEnvConc = prometheus.NewDesc("shoal_execution_environment_concurrency",
		"ExecutionEnvironmentConcurrency: the most invocations in flight at once in the environment over the last heartbeat interval (the scaler's saturation signal).", envLabels, nil)
	descEnvLimit = prometheus.NewDesc("shoal_execution_environment_concurrency_limit",
		"ExecutionEnvironmentConcurrencyLimit: the invocations the environment runs at once.", envLabels, nil)
	descEnvCPU = prometheus.NewDesc("shoal_execution_environment_cpu_utilization_ratio",
		"ExecutionEnvironmentCPUUtilization: CPU time over the last heartbeat interval, as a share of the environment's vCPUs.", envLabels, nil)
	descEnvMem = prometheus.NewDesc("shoal_execution_environment_memory_utilization_ratio",
		"ExecutionEnvironmentMemoryUtilization: memory in use as a share of the environment's memory.", envLabels, nil)
)

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstances, descCPU, descMem, descVCPUAvail, descVCPUAlloc, descMemAvail,
		descMemAlloc, descRx, descTx, descFDs, descInstEnvs, descEnvs, descEnvConc, descEnvLimit, descEnvCPU, descEnvMem} {
		ch <- d
	}
}

// envStates are the environment states an agent reports.
var envStates = []string{"initializing", "ready", "draining", "failed"}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	type group struct{ cp, typ, zone, state string }
	instances := map[group]int{}
	type versionState struct{ cp, function, version, state string }
	versions := map[versionState]int{}
	for _, in := range c.instances() {
		instances[group{in.CapacityProvider, in.Type, in.Zone, in.State}]++
		if in.State != fleet.StateRunning && in.State != fleet.StateDraining {
			continue // no figures: not booted yet, or gone
		}
		il := []string{in.CapacityProvider, in.ID, in.Type, in.Zone}
		var vcpu float64
		var memMB int
		envs := map[string]int{}
		for _, st := range envStates {
			envs[st] = 0
		}
		for _, e := range in.Environments {
			vcpu += e.VCPU
			memMB += e.MemoryMB
			envs[e.State]++
			versions[versionState{in.CapacityProvider, e.Function, e.Version, e.State}]++
			el := []string{in.CapacityProvider, e.Function, e.Version, in.ID, e.ID}
			gauge(descEnvConc, float64(e.PeakInFlight), el...)
			gauge(descEnvLimit, float64(e.Slots), el...)
			gauge(descEnvCPU, e.CPUUtilization, el...)
			gauge(descEnvMem, e.MemoryUtilization, el...)
		}
		gauge(descCPU, in.CPUUtilization, il...)
		gauge(descMem, in.MemoryUtilization, il...)
		gauge(descVCPUAlloc, vcpu, il...)
		gauge(descVCPUAvail, max(float64(in.VCPU)-vcpu, 0), il...)
		gauge(descMemAlloc, float64(uint64(memMB)<<20), il...)
		gauge(descMemAvail, float64(uint64(max(in.MemoryMB-memMB, 0))<<20), il...)
		counter(descRx, float64(in.NetworkRxBytes), il...)
		counter(descTx, float64(in.NetworkTxBytes), il...)
		gauge(descFDs, float64(in.OpenFDs), il...)
		for st, n := range envs {
			gauge(descInstEnvs, float64(n), append(il[:len(il):len(il)], st)...)
		}
	}
	for g, n := range instances {
		gauge(descInstances, float64(n), g.cp, g.typ, g.zone, g.state)
	}
	for v, n := range versions {
		gauge(descEnvs, float64(n), v.cp, v.function, v.version, v.state)
	}
}

// hostCollector exports, on a node of a cluster, the hosts as the fleet
// sees them (their capacity, what their instances take, their heartbeats)
// and whether this node leads.
type hostCollector struct {
	hosts   func() []fleet.HostStatus
	now     func() time.Time
	leading func() (node string, leads bool)
}

var (
	hostLabels      = []string{"host", "zone"}
	descHostVCPU    = prometheus.NewDesc("shoal_host_vcpus", "vCPUs a host offers to instances.", hostLabels, nil)
	descHostVCPUUse = prometheus.NewDesc("shoal_host_vcpus_used", "vCPUs of a host its instances take (pending, running and draining).", hostLabels, nil)
	descHostMem     = prometheus.NewDesc("shoal_host_memory_bytes", "Memory a host offers to instances.", hostLabels, nil)
	descHostMemUse  = prometheus.NewDesc("shoal_host_memory_used_bytes", "Memory of a host its instances take.", hostLabels, nil)
	descHostInst    = prometheus.NewDesc("shoal_host_instances", "Instances on a host.", hostLabels, nil)
	descHostUp      = prometheus.NewDesc("shoal_host_up", "1 while a host heartbeats, 0 once it is lost.", hostLabels, nil)
	descHostAge     = prometheus.NewDesc("shoal_host_heartbeat_age_seconds", "Time since a host's last heartbeat.", hostLabels, nil)
	descLeader      = prometheus.NewDesc("shoal_cluster_leader", "1 on the node that leads the cluster (runs the scaler and the fleet), else 0.", []string{"node"}, nil)
)

func (c *hostCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHostVCPU, descHostVCPUUse, descHostMem, descHostMemUse, descHostInst, descHostUp, descHostAge, descLeader} {
		ch <- d
	}
}

func (c *hostCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	now := c.now()
	for _, h := range c.hosts() {
		l := []string{h.Name, h.Zone}
		gauge(descHostVCPU, float64(h.VCPU), l...)
		gauge(descHostVCPUUse, float64(h.UsedVCPU), l...)
		gauge(descHostMem, float64(uint64(h.MemoryMB)<<20), l...)
		gauge(descHostMemUse, float64(uint64(h.UsedMemoryMB)<<20), l...)
		gauge(descHostInst, float64(h.Instances), l...)
		up := 1.0
		if h.State == fleet.HostLost {
			up = 0
		}
		gauge(descHostUp, up, l...)
		gauge(descHostAge, max(now.Sub(h.LastHeartbeat).Seconds(), 0), l...)
	}
	node, leads := c.leading()
	v := 0.0
	if leads {
		v = 1
	}
	gauge(descLeader, v, node)
}

// panicsCollector counts the panics the process recovered (internal/guard).
func panicsCollector() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_panics_recovered_total",
		Help: "Panics in shoal's server goroutines that were recovered and logged with their stack; the process served on."},
		func() float64 { return float64(guard.Panics()) })
}
