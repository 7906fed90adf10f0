package agent

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/wire"
)

// scrapeAgent GETs the agent's /metrics and parses it with Prometheus' text parser.
func scrapeAgent(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// agentSample returns the value of the series of name whose labels include want.
func agentSample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
next:
	for _, m := range mfs[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		if m.Counter != nil {
			return m.Counter.GetValue(), true
		}
		return m.Gauge.GetValue(), true
	}
	return 0, false
}

func TestAgentMetricsEndpoint(t *testing.T) {
	ta := startTestAgent(t)
	addr := ta.a.MetricsAddr()
	if addr == "" {
		t.Fatal("the agent has no metrics endpoint")
	}
	ta.start(t, "env-m", 3)
	ta.waitEnv(t, "env-m", EnvReady)
	labels := map[string]string{"capacity_provider": "cp1", "instance": "i-test", "instance_type": "m7i.large",
		"zone": "us-east-1a", "function": "sleepy", "version": "1", "environment": "env-m"}

	// The heartbeat announces the endpoint and the environment's allocation.
	poll.Until(t, 10*time.Second, func() error {
		hb, _ := ta.hbs.get(ta.cfg.ID)
		if hb.MetricsAddr != addr {
			return fmt.Errorf("heartbeat metrics address %q, want %q", hb.MetricsAddr, addr)
		}
		if len(hb.Environments) != 1 || hb.Environments[0].MemoryMB != 512 {
			return fmt.Errorf("environments %+v: want one of 512 MB", hb.Environments)
		}
		if hb.OpenFDs <= 0 {
			return fmt.Errorf("open fds %d", hb.OpenFDs)
		}
		return nil
	})

	before := scrapeAgent(t, addr)
	// Metering failures are counted, at 0 on a healthy agent.
	for _, name := range []string{"shoal_usage_record_failures_total", "shoal_usage_publish_failures_total",
		"shoal_usage_damaged_lines_total"} {
		if v, ok := agentSample(before, name, nil); !ok || v != 0 {
			t.Errorf("%s = %v (found %v), want 0", name, v, ok)
		}
	}
	// Recovered panics are counted per process: other tests of this package
	// recover some on purpose.
	if v, ok := agentSample(before, "shoal_panics_recovered_total", nil); !ok || v != float64(guard.Panics()) {
		t.Errorf("shoal_panics_recovered_total = %v (found %v), want %d", v, ok, guard.Panics())
	}
	if got, _ := agentSample(before, "shoal_agent_environment_concurrency_limit", labels); got != 3 {
		t.Fatalf("concurrency limit %v, want 3", got)
	}
	rx0, _ := agentSample(before, "shoal_agent_network_receive_bytes_total", nil)

	// Three slow invocations fill the environment; a fourth is refused.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if _, err := ta.conn.Invoke(context.Background(), "env-m", env.Invocation{
				RequestID: fmt.Sprintf("m-%d", i), Payload: []byte(`{"op":"sleep","ms":1500}`)}); err != nil {
				t.Error(err)
			}
		})
	}
	poll.Until(t, 10*time.Second, func() error {
		m := scrapeAgent(t, addr)
		if got, _ := agentSample(m, "shoal_agent_environment_in_flight", labels); got != 3 {
			return fmt.Errorf("in flight %v, want 3", got)
		}
		// The peak since the last heartbeat is at least what runs now.
		if got, _ := agentSample(m, "shoal_agent_environment_concurrency", labels); got != 3 {
			return fmt.Errorf("concurrency %v, want 3", got)
		}
		return nil
	})
	_, err := ta.conn.Invoke(context.Background(), "env-m", env.Invocation{RequestID: "m-x"})
	if r, ok := wire.AsRefused(err); !ok || r.Reason != wire.ReasonConcurrency {
		t.Fatalf("fourth invocation: %v, want a concurrency refusal", err)
	}
	wg.Wait()

	after := scrapeAgent(t, addr)
	checks := []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
	}{
		{"shoal_agent_environment_invocations_total", labels, func(v float64) bool { return v == 3 }},
		{"shoal_agent_environment_refusals_total", withLabel(labels, "reason", "concurrency"), func(v float64) bool { return v == 1 }},
		{"shoal_agent_environment_refusals_total", withLabel(labels, "reason", "cpu"), func(v float64) bool { return v == 0 }},
		{"shoal_agent_environment_in_flight", labels, func(v float64) bool { return v == 0 }},
		{"shoal_agent_network_receive_bytes_total", nil, func(v float64) bool { return v > rx0 }},
		{"shoal_agent_network_transmit_bytes_total", nil, func(v float64) bool { return v > 0 }},
		{"shoal_agent_open_fds", nil, func(v float64) bool { return v > 0 }},
		{"shoal_agent_environments", map[string]string{"state": "ready"}, func(v float64) bool { return v == 1 }},
		{"shoal_agent_vcpus", nil, func(v float64) bool { return v == 2 }},
	}
	for _, c := range checks {
		if got, found := agentSample(after, c.name, c.labels); !found || !c.want(got) {
			t.Errorf("%s%v = %v (found %v)", c.name, c.labels, got, found)
		}
	}
}

// TestEnvironmentMemoryUtilization checks that the memory an environment's
// processes use shows in its heartbeat (it needs the memory cgroup).
func TestEnvironmentMemoryUtilization(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for the environments' memory cgroups")
	}
	ta := startTestAgent(t)
	ta.start(t, "env-mem", 1)
	ta.waitEnv(t, "env-mem", EnvReady)
	if _, err := ta.conn.Invoke(context.Background(), "env-mem", env.Invocation{
		RequestID: "grow", Payload: []byte(`{"op":"oom","mb":128}`)}); err != nil {
		t.Fatal(err)
	}
	// 128 of 512 MB are held by the function now: at least a quarter.
	poll.Until(t, 10*time.Second, func() error {
		hb, _ := ta.hbs.get(ta.cfg.ID)
		for _, e := range hb.Environments {
			if e.ID == "env-mem" {
				if e.MemoryUtilization < 0.25 {
					return fmt.Errorf("memory utilisation %.3f, want at least 0.25", e.MemoryUtilization)
				}
				return nil
			}
		}
		return fmt.Errorf("no env-mem in the heartbeat")
	})
}

func withLabel(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range m {
		out[kk] = vv
	}
	return out
}
