package controlplane

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/env"
	fleetpkg "github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/pricing"
	"github.com/shoal-dev/shoal/internal/registry"
	"github.com/shoal-dev/shoal/internal/router"
)

// BenchmarkScaleTickAtScale measures one round of the scaler loop (Tick)
// at scale: 5 capacity providers of c6i.2xlarge instances, 50 Managed
// Instances versions of 10 environments each (min = max = 10), 500
// environments in all. The registry is the real one, on an embedded bus;
// the fleet and the agents are stand-ins that launch an instance, or start
// an environment, the moment they are asked (so the loop converges at
// once), and list the instances as the real fleet does, a copy per call.
// The loop first runs until the fleet holds every environment and a round
// asks for nothing; ns/op is then a steady round, the one the control
// plane repeats every 2 s. It also reports the first round, which plans
// the whole fleet from nothing (first-tick-ms), and the instances.
func BenchmarkScaleTickAtScale(b *testing.B) {
	const (
		providers = 5
		functions = 50
		envsPer   = 10
	)
	ctx := context.Background()
	bs, err := bus.Start(ctx, bus.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bs.Close)
	reg, err := registry.Open(ctx, bs.JetStream(), registry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reg.Close() })
	var arns []string
	for i := range providers {
		cp, err := reg.CreateCapacityProvider(ctx, registry.CreateCapacityProviderInput{Name: fmt.Sprintf("cp-%d", i),
			Provider: registry.CapacityProvider{
				VpcConfig:            &registry.CapacityProviderVpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}},
				PermissionsConfig:    &registry.CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: "arn:aws:iam::123456789012:role/op"},
				InstanceRequirements: &registry.InstanceRequirements{AllowedInstanceTypes: []string{"c6i.2xlarge"}},
			}})
		if err != nil {
			b.Fatal(err)
		}
		arns = append(arns, cp.CapacityProviderArn)
	}
	code := zipOf(b, "bootstrap", "#!/bin/sh\n")
	for i := range functions {
		name := fmt.Sprintf("fn-%02d", i)
		_, _, err := reg.CreateFunction(ctx, registry.CreateFunctionInput{Publish: true, ZipFile: code, Config: registry.Version{
			FunctionName: name, Runtime: "provided.al2023", Handler: "bootstrap", Role: "arn:aws:iam::123456789012:role/fn",
			MemorySize: 2048, CapacityProviderConfig: &registry.CapacityProviderConfig{
				LambdaManagedInstancesCapacityProviderConfig: &registry.ManagedInstancesConfig{CapacityProviderArn: arns[i%providers],
					PerExecutionEnvironmentMaxConcurrency: 8, ExecutionEnvironmentMemoryGiBPerVCpu: 2}},
		}})
		if err != nil {
			b.Fatal(err)
		}
		n := envsPer
		if _, err := reg.PutFunctionScalingConfig(ctx, name, "1", registry.ScalingConfig{MinExecutionEnvironments: &n, MaxExecutionEnvironments: &n}); err != nil {
			b.Fatal(err)
		}
	}
	fleet := &instantFleet{catalog: pricing.Default(), ins: map[string]*fleetpkg.Instance{}}
	managed := router.NewManaged(nil)
	l, err := newScaleLoop(scaleLoopConfig{Zones: []string{"us-east-1a", "us-east-1b", "us-east-1c"}}, scaleLoopDeps{
		Registry: reg, Fleet: fleet, Environments: fleet,
		Demand: func(key string) (int64, time.Duration, int64) {
			st := managed.Stats(key)
			return st.Invocations.Load(), time.Duration(st.BusyNanos.Load()),
				st.ThrottlesConcurrency.Load() + st.ThrottlesCPU.Load() + st.ThrottlesMemory.Load()
		},
		Spec: func(v *registry.Version) env.Spec { return targetFor(v, Config{}).Spec },
	})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	l.Tick(ctx)
	first := time.Since(t0)
	l.wg.Wait()
	for round := 0; ; round++ {
		asked := fleet.asked()
		l.Tick(ctx)
		l.wg.Wait()
		if fleet.asked() == asked && fleet.envs() == functions*envsPer {
			break
		}
		if round > 50 {
			b.Fatalf("the fleet holds %d environments after 50 rounds, want %d", fleet.envs(), functions*envsPer)
		}
	}
	mvs, err := reg.ListManagedVersions(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, mv := range mvs {
		if mv.State != registry.StateActive {
			b.Fatalf("%s:%s is %s, want Active", mv.Version.FunctionName, mv.Version.Version, mv.State)
		}
	}
	asked := fleet.asked()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		l.Tick(ctx)
	}
	b.StopTimer()
	l.wg.Wait()
	if fleet.asked() != asked {
		b.Errorf("a steady round asked the fleet for %d changes", fleet.asked()-asked)
	}
	b.ReportMetric(float64(first.Microseconds())/1000, "first-tick-ms")
	b.ReportMetric(float64(len(fleet.Instances())), "instances")
	b.ReportMetric(float64(fleet.envs()), "envs")
}

// instantFleet is a fleet and its agents that do at once what they are asked.
type instantFleet struct {
	catalog *pricing.Catalog

	mu    sync.Mutex
	ins   map[string]*fleetpkg.Instance
	seq   int
	calls int
}

func (f *instantFleet) Launch(ctx context.Context, spec fleetpkg.InstanceSpec) error {
	it, err := f.catalog.InstanceType(spec.Type)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	f.calls++
	id := fmt.Sprintf("i-%05d", f.seq)
	f.ins[id] = &fleetpkg.Instance{ID: id, CapacityProvider: spec.CapacityProvider, Type: spec.Type, Zone: spec.Zone,
		State: fleetpkg.StateRunning, VCPU: it.VCPU, MemoryMB: it.MemoryGiB * 1024, InvokeNetwork: "unix", InvokeAddr: "/run/" + id}
	return nil
}

func (f *instantFleet) Terminate(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	delete(f.ins, id)
	return nil
}

// Instances copies the instances, as fleet.Local and fleet.Cluster do.
func (f *instantFleet) Instances() []fleetpkg.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fleetpkg.Instance, 0, len(f.ins))
	for _, in := range f.ins {
		c := *in
		c.Environments = slices.Clone(in.Environments)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b fleetpkg.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (f *instantFleet) StartEnvironment(ctx context.Context, id string, req agent.StartEnv) (agent.EnvStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	in := f.ins[id]
	if in == nil {
		return agent.EnvStatus{}, fmt.Errorf("no instance %s", id)
	}
	es := agent.EnvStatus{ID: req.EnvID, Function: req.Spec.FunctionName, Version: req.Spec.Version, Revision: req.Revision,
		Slots: req.Spec.MaxConcurrency, State: "ready", VCPU: req.Spec.CPUs, MemoryMB: req.Spec.MemoryMB}
	in.Environments = append(in.Environments, es)
	return es, nil
}

func (f *instantFleet) StopEnvironment(ctx context.Context, id, envID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if in := f.ins[id]; in != nil {
		in.Environments = slices.DeleteFunc(in.Environments, func(e agent.EnvStatus) bool { return e.ID == envID })
	}
	return nil
}

// asked counts the launches, terminations, starts and stops so far.
func (f *instantFleet) asked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// envs counts the environments on the instances.
func (f *instantFleet) envs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, in := range f.ins {
		n += len(in.Environments)
	}
	return n
}

// zipOf zips one executable file, name, holding data.
func zipOf(b *testing.B, name, data string) []byte {
	b.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
	hdr.SetMode(0o755)
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.Write([]byte(data)); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}
