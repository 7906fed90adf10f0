package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// The control plane at scale: one `shoal up` with many Managed Instances
// environments on many instances. The instances are real `shoal agent`
// processes and the environments real aws-lambda-go runtimes (the test
// function), run without isolation (--isolate=false) so that a 2-core
// machine holds them all: the figures are the control plane's.

const (
	scaleProviders = 5  // capacity providers
	scaleFunctions = 50 // functions, spread over the providers
	scaleEnvs      = 10 // environments of each function (min = max)
	// scaleType holds 7 environments of 1 vCPU and 2 GiB beside its agent's
	// reserve: 500 environments take 70 or more instances.
	scaleType = "c6i.2xlarge"
)

// BenchmarkManagedAtScale runs one `shoal up` with 50 Managed Instances
// functions (10 environments each, 500 in all) on 5 capacity providers of
// c6i.2xlarge instances. It first brings one function's 10 environments up
// and measures the control plane (its memory, and a warm invoke of that
// function at 8 clients); then it brings up the other 490 and measures the
// same again, and the control plane's CPU while idle. It reports:
//
//   - instances and environments at scale, and the seconds the 490 took to
//     be ready (s-scale-out);
//   - the control plane's memory per environment: the growth of its live
//     Go heap (heap-KiB/env) and of its resident set (rss-KiB/env) from 10
//     environments to 500, divided by 490. The live heap is read right
//     after collections that invocations of 64 KB payloads bring about (the
//     least heap_alloc seen just after five of them); the resident set also
//     holds what the scale-out's transient buffers left;
//   - the front's CPU per invocation, and invocations a second, with 10 and
//     with 500 environments in its routing table (the same function, the
//     same 10 environments);
//   - the control plane's CPU while idle at scale, in ms a second (scaler
//     ticks, 70-odd agents' heartbeats, the router's table updates).
//
// The setup takes minutes: run it with -benchtime 5000x (the invocations
// of each load).
func BenchmarkManagedAtScale(b *testing.B) {
	metrics := freeAddr(b)
	endpoint, front, client := shoalUp(b, "--isolate=false", "--metrics-listen", metrics)
	ctx := context.Background()
	zip := goFn.zip(b)
	var arns []string
	for i := range scaleProviders {
		cp, err := client.CreateCapacityProvider(ctx, &lambda.CreateCapacityProviderInput{
			CapacityProviderName: aws.String(fmt.Sprintf("scale-%d", i)),
			VpcConfig:            &types.CapacityProviderVpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}},
			PermissionsConfig:    &types.CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: aws.String("arn:aws:iam::123456789012:role/op")},
			InstanceRequirements: &types.InstanceRequirements{AllowedInstanceTypes: []string{scaleType}},
		})
		if err != nil {
			b.Fatal(err)
		}
		arns = append(arns, aws.ToString(cp.CapacityProvider.CapacityProviderArn))
	}
	fnName := func(i int) string { return fmt.Sprintf("scale-%02d", i) }
	scale := func(i, envs int) {
		if _, err := client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: aws.String(fnName(i)),
			Qualifier: aws.String("1"), FunctionScalingConfig: &types.FunctionScalingConfig{
				MinExecutionEnvironments: aws.Int32(int32(envs)), MaxExecutionEnvironments: aws.Int32(int32(envs))}}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range scaleFunctions {
		_, err := client.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(fnName(i)), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String("arn:aws:iam::123456789012:role/bench"), Code: &types.FunctionCode{ZipFile: zip},
			MemorySize: aws.Int32(2048), Timeout: aws.Int32(30), Publish: true,
			CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
				CapacityProviderArn: aws.String(arns[i%scaleProviders]), PerExecutionEnvironmentMaxConcurrency: aws.Int32(8),
				ExecutionEnvironmentMemoryGiBPerVCpu: aws.Float64(2)}},
		})
		if err != nil {
			b.Fatal(err)
		}
		envs := 0
		if i == 0 {
			envs = scaleEnvs
		}
		scale(i, envs)
	}
	waitActive(b, client, fnName(0), "1", 5*time.Minute)
	url := endpoint + "/2015-03-31/functions/" + fnName(0) + "/invocations?Qualifier=1"
	procs := []watched{{name: "front", pids: []int{front}}}

	// 10 environments.
	var small memory
	b.Run("envs=10/c=8", func(b *testing.B) {
		load(b, url, 8, echoBody, procs...)
		small = readMemory(b, metrics, url)
	})

	// 500 environments.
	t0 := time.Now()
	for i := 1; i < scaleFunctions; i++ {
		scale(i, scaleEnvs)
	}
	for i := 1; i < scaleFunctions; i++ {
		waitActive(b, client, fnName(i), "1", 15*time.Minute)
	}
	scaledOut := time.Since(t0)
	f, err := (&netShoal{endpoint: endpoint, http: &http.Client{Transport: signerFor(endpoint, http.DefaultTransport)}}).fleet()
	if err != nil {
		b.Fatal(err)
	}
	instances, envs := 0, 0
	for _, in := range f.Instances {
		if in.State != "running" {
			continue
		}
		instances++
		for _, e := range in.Environments {
			if e.State == "ready" {
				envs++
			}
		}
	}
	if envs < scaleFunctions*scaleEnvs {
		b.Fatalf("%d environments ready, want %d", envs, scaleFunctions*scaleEnvs)
	}
	cpu0, idle0 := procs[0].cpu(), time.Now()
	time.Sleep(10 * time.Second)
	idleCPU := float64((procs[0].cpu() - cpu0).Milliseconds()) / time.Since(idle0).Seconds()
	b.Run("envs=500/c=8", func(b *testing.B) {
		load(b, url, 8, echoBody, procs...)
		large := readMemory(b, metrics, url)
		grown := float64(envs - scaleEnvs)
		b.ReportMetric(float64(instances), "instances")
		b.ReportMetric(float64(envs), "envs")
		b.ReportMetric(scaledOut.Seconds(), "s-scale-out")
		b.ReportMetric(float64(large.rss-small.rss)/1024/grown, "rss-KiB/env")
		b.ReportMetric(float64(large.heap-small.heap)/1024/grown, "heap-KiB/env")
		b.ReportMetric(float64(large.rss)/(1<<20), "rss-MiB")
		b.ReportMetric(float64(large.heap)/(1<<20), "heap-MiB")
		b.ReportMetric(idleCPU, "idle-cpu-ms/s")
	})
}

// memory is what the control plane holds: its resident set and live Go heap.
type memory struct{ rss, heap float64 }

// readMemory reads the control plane's resident set and live heap from its
// /metrics at addr. The live heap is the least heap_alloc read just after
// each of five collections, which invocations of url with 64 KB payloads
// bring about: a collection runs only when the heap grows, and the figures
// of one long ago, or of a heap full of garbage, say nothing.
func readMemory(b *testing.B, addr, url string) memory {
	b.Helper()
	hc := &http.Client{Transport: signerFor(url, http.DefaultTransport)}
	payload := []byte(`{"pad":"` + strings.Repeat("x", 64<<10) + `"}`)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := hc.Post(url, "application/json", bytes.NewReader(payload))
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	defer func() { close(stop); <-done }()
	const gcName, heapName = "go_memstats_last_gc_time_seconds", "go_memstats_heap_alloc_bytes"
	last, seen, heap := promValues(b, addr, gcName)[gcName], 0, math.Inf(1)
	for deadline := time.Now().Add(time.Minute); seen < 5; {
		if time.Now().After(deadline) {
			b.Fatalf("%d collections in a minute of invocations", seen)
		}
		v := promValues(b, addr, gcName, heapName)
		if v[gcName] != last {
			last, seen, heap = v[gcName], seen+1, min(heap, v[heapName])
		}
		time.Sleep(10 * time.Millisecond)
	}
	return memory{rss: promValues(b, addr, "process_resident_memory_bytes")["process_resident_memory_bytes"], heap: heap}
}

// promValues reads unlabelled series from the Prometheus endpoint at addr.
func promValues(b *testing.B, addr string, names ...string) map[string]float64 {
	b.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		for _, name := range names {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					b.Fatal(err)
				}
				out[name] = f
			}
		}
	}
	for _, name := range names {
		if _, ok := out[name]; !ok {
			b.Fatalf("no %s in /metrics", name)
		}
	}
	return out
}
