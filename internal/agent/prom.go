package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/sandbox"
)

// observer measures what an agent reports beyond its CPU and memory — the
// bytes of its invoke connections, its open file descriptors, each
// environment's memory — and serves the agent's Prometheus endpoint, whose
// figures are those of the heartbeat.
//
// Concurrency: rx and tx are atomic (invoke connections add to them). mu
// guards everything else.
type observer struct {
	rx, tx atomic.Uint64

	mu     sync.Mutex
	boxes  map[string]string  // sandbox id → its cgroup directory ("" without cgroups)
	envMem map[string]float64 // environment id → memory utilisation at the last sample
	fds    int

	srv  *http.Server
	addr string
}

func newObserver() *observer {
	return &observer{boxes: map[string]string{}, envMem: map[string]float64{}}
}

// sandboxes wraps a sandbox factory (nil: agent.DefaultSandboxes) so that the
// observer knows every sandbox's cgroup while it exists.
func (o *observer) sandboxes(inner env.SandboxFactory) env.SandboxFactory {
	if inner == nil {
		inner = env.DefaultSandboxes
	}
	return func(cfg sandbox.Config, logger *slog.Logger) (env.Sandbox, error) {
		box, err := inner(cfg, logger)
		if err != nil {
			return nil, err
		}
		o.mu.Lock()
		o.boxes[cfg.ID] = box.CgroupPath()
		o.mu.Unlock()
		return &trackedBox{Sandbox: box, o: o, id: cfg.ID}, nil
	}
}

// trackedBox forgets its sandbox when it is closed.
type trackedBox struct {
	env.Sandbox
	o  *observer
	id string
}

func (b *trackedBox) Close() error {
	b.o.mu.Lock()
	delete(b.o.boxes, b.id)
	b.o.mu.Unlock()
	return b.Sandbox.Close()
}

// sandboxID is the id agent.Start gives the sandbox of an environment.
func sandboxID(ae *env.Environment) string { return "shoal-" + ae.ID() }

// countConns counts the bytes of every connection ln accepts.
func (o *observer) countConns(ln net.Listener) net.Listener {
	return &countingListener{Listener: ln, o: o}
}

type countingListener struct {
	net.Listener
	o *observer
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, o: l.o}, nil
}

type countingConn struct {
	net.Conn
	o *observer
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.o.rx.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.o.tx.Add(uint64(n))
	return n, err
}

// sample measures each environment's memory and the open descriptors; the
// heartbeat goroutine calls it every interval.
func (o *observer) sample(a *Agent) {
	type envBox struct {
		id, box string
		limit   int
	}
	var envs []envBox
	a.mu.RLock()
	for _, e := range a.envs {
		if ae := readyEnv(e); ae != nil {
			envs = append(envs, envBox{id: e.id, box: sandboxID(ae), limit: ae.Spec().MemoryMB})
		}
	}
	a.mu.RUnlock()
	o.mu.Lock()
	dirs := make([]string, 0, len(o.boxes))
	for _, d := range o.boxes {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	mem := make(map[string]float64, len(envs))
	for _, e := range envs {
		if d := o.boxes[e.box]; d != "" && e.limit > 0 {
			if b, ok := cgroupMemoryBytes(d); ok {
				mem[e.id] = float64(b) / float64(uint64(e.limit)<<20)
			}
		}
	}
	o.mu.Unlock()
	fds := openFDs(dirs)
	o.mu.Lock()
	o.envMem, o.fds = mem, fds
	o.mu.Unlock()
}

// readyEnv returns an environment's agent.Environment once its init is over.
func readyEnv(e *hostedEnv) *env.Environment {
	select {
	case <-e.ready:
		return e.ae
	default:
		return nil
	}
}

// fill adds the observer's figures to a heartbeat: the endpoint, network
// bytes, descriptors, and what each environment is allocated and uses.
func (o *observer) fill(a *Agent, hb *Heartbeat) {
	hb.NetworkRxBytes, hb.NetworkTxBytes = o.rx.Load(), o.tx.Load()
	o.mu.Lock()
	hb.MetricsAddr = o.addr
	hb.OpenFDs = o.fds
	for i := range hb.Environments {
		hb.Environments[i].MemoryUtilization = o.envMem[hb.Environments[i].ID]
	}
	o.mu.Unlock()
	a.mu.RLock()
	for i := range hb.Environments {
		st := &hb.Environments[i]
		if e := a.envs[st.ID]; e != nil {
			if ae := readyEnv(e); ae != nil {
				spec := ae.Spec()
				st.VCPU, st.MemoryMB = spec.CPUs, spec.MemoryMB
			}
		}
	}
	a.mu.RUnlock()
}

// serve starts the agent's Prometheus endpoint on a loopback port.
func (o *observer) serve(a *Agent) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&agentCollector{a: a},
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_panics_recovered_total",
			Help: "Panics in the agent's goroutines that were recovered and logged with their stack; the agent served on."},
			func() float64 { return float64(guard.Panics()) }))
	if a.meter != nil {
		reg.MustRegister(a.meter.Collectors()...)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	o.mu.Lock()
	o.srv, o.addr = srv, ln.Addr().String()
	o.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("metrics endpoint stopped", "err", err)
		}
	}()
	return nil
}

// close stops the endpoint.
func (o *observer) close() {
	o.mu.Lock()
	srv := o.srv
	o.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// MetricsAddr is where the agent serves GET /metrics ("" if it does not).
func (a *Agent) MetricsAddr() string {
	if a.obs == nil {
		return ""
	}
	a.obs.mu.Lock()
	defer a.obs.mu.Unlock()
	return a.obs.addr
}

// The agent's metrics. Every one carries the instance's capacity_provider,
// instance, instance_type and zone; those of an environment add its
// function, version and environment id.
var (
	instLabels = []string{"capacity_provider", "instance", "instance_type", "zone"}
	envLabels  = append(append([]string(nil), instLabels...), "function", "version", "environment")

	descAgentCPU = prometheus.NewDesc("shoal_agent_cpu_utilization_ratio",
		"CPU time the instance used over the last heartbeat interval, as a share of its vCPUs.", instLabels, nil)
	descAgentMemUsed = prometheus.NewDesc("shoal_agent_memory_used_bytes",
		"Memory the instance uses.", instLabels, nil)
	descAgentMem = prometheus.NewDesc("shoal_agent_memory_bytes",
		"Memory of the instance type.", instLabels, nil)
	descAgentVCPU = prometheus.NewDesc("shoal_agent_vcpus",
		"vCPUs of the instance type.", instLabels, nil)
	descAgentRx = prometheus.NewDesc("shoal_agent_network_receive_bytes_total",
		"Bytes received on the agent's invoke connections.", instLabels, nil)
	descAgentTx = prometheus.NewDesc("shoal_agent_network_transmit_bytes_total",
		"Bytes sent on the agent's invoke connections.", instLabels, nil)
	descAgentFDs = prometheus.NewDesc("shoal_agent_open_fds",
		"File descriptors open in the agent and its environments' processes.", instLabels, nil)
	descAgentEnvs = prometheus.NewDesc("shoal_agent_environments",
		"Execution environments on the instance, by state.", append(append([]string(nil), instLabels...), "state"), nil)

	descEnvInFlight = prometheus.NewDesc("shoal_agent_environment_in_flight",
		"Invocations running in the environment now.", envLabels, nil)
	descEnvPeak = prometheus.NewDesc("shoal_agent_environment_concurrency",
		"ExecutionEnvironmentConcurrency: the most invocations in flight at once since the last heartbeat.", envLabels, nil)
	descEnvLimit = prometheus.NewDesc("shoal_agent_environment_concurrency_limit",
		"ExecutionEnvironmentConcurrencyLimit: the environment's slots.", envLabels, nil)
	descEnvCPU = prometheus.NewDesc("shoal_agent_environment_cpu_utilization_ratio",
		"ExecutionEnvironmentCPUUtilization: CPU time over the last heartbeat interval, as a share of the environment's vCPUs.", envLabels, nil)
	descEnvMem = prometheus.NewDesc("shoal_agent_environment_memory_utilization_ratio",
		"ExecutionEnvironmentMemoryUtilization: memory in use as a share of the environment's memory.", envLabels, nil)
	descEnvInvocations = prometheus.NewDesc("shoal_agent_environment_invocations_total",
		"Invocations the environment ran.", envLabels, nil)
	descEnvRefused = prometheus.NewDesc("shoal_agent_environment_refusals_total",
		"Invocations addressed to the environment that the agent refused, by reason.", append(append([]string(nil), envLabels...), "reason"), nil)
)

// agentCollector reads the agent's heartbeat on every scrape.
type agentCollector struct{ a *Agent }

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAgentCPU, descAgentMemUsed, descAgentMem, descAgentVCPU, descAgentRx,
		descAgentTx, descAgentFDs, descAgentEnvs, descEnvInFlight, descEnvPeak, descEnvLimit, descEnvCPU, descEnvMem,
		descEnvInvocations, descEnvRefused} {
		ch <- d
	}
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	hb := c.a.heartbeat(c.a.state(), false)
	il := []string{hb.CapacityProvider, hb.ID, hb.Type, hb.Zone}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descAgentCPU, hb.CPUUtilization, il...)
	gauge(descAgentMemUsed, float64(uint64(hb.MemoryUsedMB)<<20), il...)
	gauge(descAgentMem, float64(uint64(hb.MemoryMB)<<20), il...)
	gauge(descAgentVCPU, float64(hb.VCPU), il...)
	counter(descAgentRx, float64(hb.NetworkRxBytes), il...)
	counter(descAgentTx, float64(hb.NetworkTxBytes), il...)
	gauge(descAgentFDs, float64(hb.OpenFDs), il...)
	states := map[string]int{EnvInitializing: 0, EnvReady: 0, EnvDraining: 0, EnvFailed: 0}
	for _, e := range hb.Environments {
		states[e.State]++
		el := append(il[:len(il):len(il)], e.Function, e.Version, e.ID)
		gauge(descEnvInFlight, float64(e.InFlight), el...)
		gauge(descEnvPeak, float64(e.PeakInFlight), el...)
		gauge(descEnvLimit, float64(e.Slots), el...)
		gauge(descEnvCPU, e.CPUUtilization, el...)
		gauge(descEnvMem, e.MemoryUtilization, el...)
		counter(descEnvInvocations, float64(e.Invocations), el...)
		for _, r := range refusalReasons {
			counter(descEnvRefused, float64(e.Refused[r]), append(el[:len(el):len(el)], r)...)
		}
	}
	for st, n := range states {
		gauge(descAgentEnvs, float64(n), append(il[:len(il):len(il)], st)...)
	}
}
