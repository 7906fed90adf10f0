package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shoal-dev/shoal/internal/poll"
)

// promScrape is one scrape of a /metrics endpoint, parsed with Prometheus'
// own text parser.
type promScrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, url string) promScrape {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return mfs
}

// sum adds the values (a histogram's sample counts) of the series of name
// whose labels include want; n is how many series matched.
func (s promScrape) sum(name string, want map[string]string) (total float64, n int) {
next:
	for _, m := range s[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		n++
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total, n
}

func (s promScrape) value(name string, want map[string]string) float64 {
	v, _ := s.sum(name, want)
	return v
}

// labels builds a label set from pairs.
func promLabels(kv ...string) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestMetrics drives an on-demand and a Managed Instances function with the
// AWS SDK and checks, through GET /metrics parsed with Prometheus' text
// parser, that each family and label set moves as the load moves.
func TestMetrics(t *testing.T) {
	s := managedShoal(t)
	url := s.metricsURL()
	defer func() {
		if t.Failed() {
			if resp, err := http.Get(url); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Logf("GET /metrics:\n%s", b)
			}
		}
	}()

	t.Run("metering failures and recovered panics are counted", func(t *testing.T) {
		m := scrapeMetrics(t, url)
		for _, name := range []string{"shoal_usage_record_failures_total", "shoal_usage_publish_failures_total",
			"shoal_usage_damaged_lines_total", "shoal_panics_recovered_total", "shoal_usage_events_published_total"} {
			if _, n := m.sum(name, nil); n != 1 {
				t.Errorf("%s: %d series, want 1", name, n)
			}
		}
		if got := m.value("shoal_usage_record_failures_total", nil); got != 0 {
			t.Errorf("usage record failures %v on a healthy shoal", got)
		}
	})

	t.Run("on-demand: invocations, errors, durations, throttles, concurrency", func(t *testing.T) {
		createGoFn(t, s, "od")
		fv := promLabels("function", "od", "version", "$LATEST")
		for range 5 {
			invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("od"), Payload: []byte(`{"op":"echo"}`)})
		}
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("od"), Payload: []byte(`{"op":"error"}`)})
		if out.FunctionError == nil {
			t.Fatal("the error invocation did not fail")
		}
		m := scrapeMetrics(t, url)
		checks := []struct {
			name string
			got  float64
			want float64
		}{
			{"invocations", m.value("shoal_function_invocations_total", fv), 6},
			{"errors", m.value("shoal_function_errors_total", fv), 1},
			{"duration samples", m.value("shoal_function_duration_seconds", fv), 6},
			{"init duration samples (one cold start)", m.value("shoal_function_init_duration_seconds", fv), 1},
			{"throttles", m.value("shoal_function_throttles_total", fv), 0},
			{"concurrent executions", m.value("shoal_function_concurrent_executions", fv), 0},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}

		// Three slow invocations at once: the gauge shows them while they run.
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("od"), Payload: []byte(`{"op":"sleep","ms":2000}`)})
			})
		}
		poll.Until(t, 20*time.Second, func() error {
			if got := scrapeMetrics(t, url).value("shoal_function_concurrent_executions", fv); got != 3 {
				return fmt.Errorf("concurrent executions %v, want 3", got)
			}
			return nil
		})
		wg.Wait()
		m = scrapeMetrics(t, url)
		if got := m.value("shoal_function_concurrent_executions", fv); got != 0 {
			t.Errorf("concurrent executions after the load = %v, want 0", got)
		}
		if got := m.value("shoal_function_invocations_total", fv); got != 9 {
			t.Errorf("invocations = %v, want 9", got)
		}

		// Reserved concurrency 0 throttles: a concurrency throttle, not an invocation.
		if _, err := s.client.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
			FunctionName: aws.String("od"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("od")}); !isErr[*types.TooManyRequestsException](err) {
			t.Fatalf("reserved 0: %v", err)
		}
		m = scrapeMetrics(t, url)
		if got := m.value("shoal_function_throttles_total", withLabel(fv, "cause", "concurrency")); got != 1 {
			t.Errorf("concurrency throttles = %v, want 1", got)
		}
		for _, cause := range []string{"cpu", "memory"} {
			if got, n := m.sum("shoal_function_throttles_total", withLabel(fv, "cause", cause)); got != 0 || n != 1 {
				t.Errorf("%s throttles = %v over %d series, want 0 over 1", cause, got, n)
			}
		}
		if got := m.value("shoal_function_invocations_total", fv); got != 9 {
			t.Errorf("invocations after the throttle = %v, want 9", got)
		}
	})

	t.Run("Managed Instances: capacity, environments, concurrency, throttles", func(t *testing.T) {
		cpArn := createCapacityProvider(t, s, "cp-metrics")
		createManagedFn(t, s, "mim", cpArn, 4)
		ver := publishBounded(t, s, "mim", 3) // 3 environments × 4 slots, 1 vCPU and 2 GiB each
		cp := promLabels("capacity_provider", "cp-metrics")
		fn := promLabels("capacity_provider", "cp-metrics", "function", "mim", "version", ver)
		fv := promLabels("function", "mim", "version", ver)

		// The fleet as the scaler sees it: three environments allocated.
		poll.Until(t, 20*time.Second, func() error {
			m := scrapeMetrics(t, url)
			if got := m.value("shoal_execution_environments", withLabel(fn, "state", "ready")); got != 3 {
				return fmt.Errorf("ready environments %v, want 3", got)
			}
			if got, n := m.sum("shoal_execution_environment_concurrency_limit", fn); got != 12 || n != 3 {
				return fmt.Errorf("concurrency limits sum to %v over %d environments, want 12 over 3", got, n)
			}
			if got := m.value("shoal_instance_vcpu_allocated", cp); got != 3 {
				return fmt.Errorf("vCPU allocated %v, want 3", got)
			}
			if got := m.value("shoal_instance_memory_allocated_bytes", cp); got != 3*2048<<20 {
				return fmt.Errorf("memory allocated %v, want 3 × 2 GiB", got)
			}
			// m7i.large: 2 vCPUs an instance, each allocated or available.
			avail, n := m.sum("shoal_instance_vcpu_available", cp)
			if n < 3 || avail+3 != float64(2*n) {
				return fmt.Errorf("vCPU available %v on %d instances", avail, n)
			}
			if got := m.value("shoal_instance_open_fds", cp); got <= 0 {
				return fmt.Errorf("open fds %v", got)
			}
			if _, n := m.sum("shoal_instance_cpu_utilization_ratio", cp); n < 3 {
				return fmt.Errorf("CPU utilisation of %d instances", n)
			}
			return nil
		})
		m0 := scrapeMetrics(t, url)
		rx0 := m0.value("shoal_instance_network_receive_bytes_total", cp)
		if got := m0.value("shoal_instance_memory_available_bytes", cp) + m0.value("shoal_instance_memory_allocated_bytes", cp); got <= 3*2048<<20 {
			t.Errorf("memory available + allocated = %v: not the instances' memory", got)
		}

		// Fill every slot: the environments' concurrency and the version's
		// concurrent executions rise to 12, and one more is a concurrency throttle.
		const slots = 12
		var wg sync.WaitGroup
		for range slots {
			wg.Go(func() {
				out, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("mim"), Qualifier: aws.String(ver),
					Payload: []byte(`{"op":"sleep","ms":4000}`)})
				if err != nil || out.FunctionError != nil {
					t.Errorf("a busy invocation failed: %v", err)
				}
			})
		}
		poll.Until(t, 20*time.Second, func() error {
			m := scrapeMetrics(t, url)
			if got := m.value("shoal_function_concurrent_executions", fv); got != slots {
				return fmt.Errorf("concurrent executions %v, want %d", got, slots)
			}
			if got := m.value("shoal_execution_environment_concurrency", fn); got != slots {
				return fmt.Errorf("environment concurrency sums to %v, want %d", got, slots)
			}
			return nil
		})
		if _, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("mim"), Qualifier: aws.String(ver)}); !isErr[*types.TooManyRequestsException](err) {
			t.Fatalf("invocation beyond every slot: %v", err)
		}
		wg.Wait()

		// One invocation holds 256 MB of its environment's 2 GiB.
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("mim"), Qualifier: aws.String(ver),
			Payload: []byte(`{"op":"oom","mb":256}`)})
		if out.FunctionError != nil {
			t.Fatalf("allocating: %s", out.Payload)
		}

		poll.Until(t, 20*time.Second, func() error {
			m := scrapeMetrics(t, url)
			if got := m.value("shoal_function_throttles_total", withLabel(fv, "cause", "concurrency")); got != 1 {
				return fmt.Errorf("concurrency throttles %v, want 1", got)
			}
			if got := m.value("shoal_function_invocations_total", fv); got != slots+1 {
				return fmt.Errorf("invocations %v, want %d", got, slots+1)
			}
			if got := m.value("shoal_function_concurrent_executions", fv); got != 0 {
				return fmt.Errorf("concurrent executions %v after the load", got)
			}
			// The peak covers one heartbeat interval: with the load gone it falls to 0.
			if got := m.value("shoal_execution_environment_concurrency", fn); got != 0 {
				return fmt.Errorf("environment concurrency %v after the load", got)
			}
			if got := m.value("shoal_instance_network_receive_bytes_total", cp); got <= rx0 {
				return fmt.Errorf("network bytes received %v, not more than %v before the load", got, rx0)
			}
			var maxMem float64
			for _, mm := range m["shoal_execution_environment_memory_utilization_ratio"].GetMetric() {
				maxMem = max(maxMem, mm.GetGauge().GetValue())
			}
			if maxMem < 256.0/2048 {
				return fmt.Errorf("largest environment memory utilisation %.3f, want at least %.3f", maxMem, 256.0/2048)
			}
			return nil
		})

		// Each agent serves its own /metrics, announced in its heartbeat: together
		// they ran every invocation the control plane counted.
		resp, err := s.http.Get(s.endpoint + "/shoal/v1/fleet")
		if err != nil {
			t.Fatal(err)
		}
		var fleet struct {
			Instances []struct {
				ID               string `json:"id"`
				CapacityProvider string `json:"capacity_provider"`
				State            string `json:"state"`
				MetricsAddr      string `json:"metrics_addr"`
			} `json:"instances"`
		}
		err = json.NewDecoder(resp.Body).Decode(&fleet)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var ran, refused float64
		agents := 0
		for _, in := range fleet.Instances {
			if in.CapacityProvider != "cp-metrics" || in.State != "running" {
				continue
			}
			if in.MetricsAddr == "" {
				t.Fatalf("instance %s announces no metrics endpoint", in.ID)
			}
			am := scrapeMetrics(t, "http://"+in.MetricsAddr+"/metrics")
			if got := am.value("shoal_agent_vcpus", promLabels("instance", in.ID)); got != 2 {
				t.Errorf("agent %s: %v vCPUs, want 2", in.ID, got)
			}
			ran += am.value("shoal_agent_environment_invocations_total", promLabels("function", "mim", "version", ver))
			refused += am.value("shoal_agent_environment_refusals_total", promLabels("function", "mim", "version", ver))
			agents++
		}
		if agents < 3 || ran != slots+1 {
			t.Errorf("%d agents ran %v invocations of mim (refused %v), want %d", agents, ran, refused, slots+1)
		}
	})
}

// with returns m plus one label.
func withLabel(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range m {
		out[kk] = vv
	}
	return out
}
