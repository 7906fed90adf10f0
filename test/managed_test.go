package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/sysmon"
)

// fleetView is GET /shoal/v1/fleet.
type fleetView struct {
	Instances []struct {
		ID               string    `json:"id"`
		CapacityProvider string    `json:"capacity_provider"`
		Zone             string    `json:"zone"`
		State            string    `json:"state"`
		LaunchedAt       time.Time `json:"launched_at"`
		StartedAt        time.Time `json:"started_at"`
		Environments     []struct {
			ID       string `json:"id"`
			Function string `json:"function"`
			Version  string `json:"version"`
			Slots    int    `json:"slots"`
			InFlight int    `json:"in_flight"`
			State    string `json:"state"`
		} `json:"environments"`
	} `json:"instances"`
}

func getFleet(t *testing.T, s *shoal) fleetView {
	t.Helper()
	resp, err := s.http.Get(s.endpoint + "/shoal/v1/fleet")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v fleetView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// readyEnvs counts the ready environments of function:version and the zones of
// the running instances that host them.
func readyEnvs(v fleetView, function, version string) (envs int, zones map[string]bool, inFlight int) {
	zones = map[string]bool{}
	for _, in := range v.Instances {
		if in.State != "running" {
			continue
		}
		for _, e := range in.Environments {
			if e.Function == function && e.Version == version && e.State == "ready" {
				envs++
				zones[in.Zone] = true
				inFlight += e.InFlight
			}
		}
	}
	return envs, zones, inFlight
}

func managedShoal(t *testing.T) *shoal {
	t.Helper()
	return startShoal(t, func(c *serverConfig) {
		c.AgentBinary = shoalBin
		c.Heartbeat = 200 * time.Millisecond
		c.ScaleInterval = 500 * time.Millisecond
	})
}

func createCapacityProvider(t *testing.T, s *shoal, name string) string {
	t.Helper()
	out, err := s.client.CreateCapacityProvider(ctx(t), &lambda.CreateCapacityProviderInput{
		CapacityProviderName: aws.String(name),
		VpcConfig:            &types.CapacityProviderVpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}},
		PermissionsConfig:    &types.CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: aws.String("arn:aws:iam::123456789012:role/operator")},
		InstanceRequirements: &types.InstanceRequirements{AllowedInstanceTypes: []string{"m7i.large"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.CapacityProvider.CapacityProviderArn)
	poll.Until(t, 30*time.Second, func() error {
		got, err := s.client.GetCapacityProvider(ctx(t), &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String(name)})
		if err != nil {
			return err
		}
		if got.CapacityProvider.State != types.CapacityProviderStateActive {
			return fmt.Errorf("capacity provider %s", got.CapacityProvider.State)
		}
		return nil
	})
	return arn
}

func createManagedFn(t *testing.T, s *shoal, name, cpArn string, concurrency int32) {
	t.Helper()
	_, err := s.client.CreateFunction(ctx(t), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: goFnZip}, MemorySize: aws.Int32(2048), Timeout: aws.Int32(30),
		CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
			CapacityProviderArn:                   aws.String(cpArn),
			PerExecutionEnvironmentMaxConcurrency: aws.Int32(concurrency),
			ExecutionEnvironmentMemoryGiBPerVCpu:  aws.Float64(2),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitVersionState(t *testing.T, s *shoal, name, version string, want types.State) {
	t.Helper()
	poll.Until(t, 3*time.Minute, func() error {
		got, err := s.client.GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{
			FunctionName: aws.String(name), Qualifier: aws.String(version)})
		if err != nil {
			return err
		}
		if got.State != want {
			return fmt.Errorf("version %s is %s (%s), want %s", version, got.State, aws.ToString(got.StateReason), want)
		}
		return nil
	})
}

func TestManagedInstances(t *testing.T) {
	s := managedShoal(t)
	cpArn := createCapacityProvider(t, s, "cp1")
	createManagedFn(t, s, "mi", cpArn, 10)

	// Never published: invoking answers NoPublishedVersionException.
	_, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("mi")})
	if errCode(err) != "NoPublishedVersionException" {
		t.Fatalf("invoke before publishing: %v", err)
	}
	v, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("mi")})
	if err != nil {
		t.Fatal(err)
	}
	ver := aws.ToString(v.Version)
	defer func() {
		if t.Failed() {
			b, _ := json.MarshalIndent(getFleet(t, s), "", " ")
			t.Logf("fleet: %s", b)
		}
	}()
	waitVersionState(t, s, "mi", ver, types.StateActive)
	envs, zones, _ := readyEnvs(getFleet(t, s), "mi", ver)
	if envs < 3 || len(zones) < 3 {
		t.Fatalf("active on %d environments in zones %v, want at least 3 in 3 zones", envs, zones)
	}

	t.Run("multi-concurrency: 30 one-second invocations overlap on N=10 environments", func(t *testing.T) {
		type span struct {
			Start, End     int64
			MaxConcurrency string `json:"max_concurrency"`
		}
		spans := make(chan span, 30)
		var wg sync.WaitGroup
		t0 := time.Now()
		for range 30 {
			wg.Go(func() {
				out, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("mi"), Qualifier: aws.String(ver),
					Payload: []byte(`{"op":"span","ms":1000}`)})
				if err != nil {
					t.Error(err)
					return
				}
				if out.FunctionError != nil {
					t.Errorf("function error: %s", out.Payload)
					return
				}
				var sp span
				if err := json.Unmarshal(out.Payload, &sp); err != nil {
					t.Error(err)
					return
				}
				spans <- sp
			})
		}
		wg.Wait()
		close(spans)
		wall := time.Since(t0)
		var starts, ends []int64
		for sp := range spans {
			if sp.MaxConcurrency != "10" {
				t.Fatalf("AWS_LAMBDA_MAX_CONCURRENCY = %q, want 10", sp.MaxConcurrency)
			}
			starts = append(starts, sp.Start)
			ends = append(ends, sp.End)
		}
		if len(starts) != 30 {
			t.Fatalf("%d of 30 invocations succeeded", len(starts))
		}
		sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
		sort.Slice(ends, func(i, j int) bool { return ends[i] < ends[j] })
		if starts[29] >= ends[0] {
			t.Fatalf("the last invocation started after the first finished: they did not all run at once")
		}
		t.Logf("30 × 1 s on 3 environments with N=10: %v wall time", wall.Round(time.Millisecond))
	})

	t.Run("shoal cp and shoal fleet show the fleet", func(t *testing.T) {
		out, errOut, code := shoalCLI(t, s, "cp", "list")
		if code != 0 || !strings.Contains(out, "cp1") || !strings.Contains(out, "Active") {
			t.Fatalf("cp list exit %d: %s %s", code, out, errOut)
		}
		out, errOut, code = shoalCLI(t, s, "cp", "get", "cp1")
		if code != 0 || !strings.Contains(out, "m7i.large") || !strings.Contains(out, "mi:"+ver) {
			t.Fatalf("cp get exit %d: %s %s", code, out, errOut)
		}
		out, errOut, code = shoalCLI(t, s, "fleet", "-o", "json")
		if code != 0 {
			t.Fatalf("fleet exit %d: %s", code, errOut)
		}
		var fv fleetView
		if err := json.Unmarshal([]byte(out), &fv); err != nil {
			t.Fatalf("fleet -o json: %v\n%s", err, out)
		}
		zones := map[string]bool{}
		for _, in := range fv.Instances {
			zones[in.Zone] = true
			if in.State == "running" && (in.LaunchedAt.IsZero() || in.StartedAt.Before(in.LaunchedAt) || in.StartedAt.After(time.Now())) {
				t.Errorf("instance %s launched at %v, started at %v", in.ID, in.LaunchedAt, in.StartedAt)
			}
		}
		if len(zones) < 3 {
			t.Fatalf("fleet shows zones %v", zones)
		}
		out, _, code = shoalCLI(t, s, "fleet")
		if code != 0 || !strings.Contains(out, "THROTTLES") || !strings.Contains(out, "us-east-1b") || !strings.Contains(out, "LAUNCHED (UTC)") {
			t.Fatalf("fleet exit %d: %s", code, out)
		}
	})

	t.Run("deleting a capacity provider in use is refused", func(t *testing.T) {
		_, err := s.client.DeleteCapacityProvider(ctx(t), &lambda.DeleteCapacityProviderInput{CapacityProviderName: aws.String("cp1")})
		if !isErr[*types.ResourceConflictException](err) {
			t.Fatalf("delete in use: %v", err)
		}
	})

	t.Run("deactivation and reactivation", func(t *testing.T) {
		if _, err := s.client.PutFunctionScalingConfig(ctx(t), &lambda.PutFunctionScalingConfigInput{FunctionName: aws.String("mi"),
			Qualifier: aws.String(ver), FunctionScalingConfig: &types.FunctionScalingConfig{
				MinExecutionEnvironments: aws.Int32(0), MaxExecutionEnvironments: aws.Int32(0)}}); err != nil {
			t.Fatal(err)
		}
		waitVersionState(t, s, "mi", ver, types.State("Deactivated"))
		if envs, _, _ := readyEnvs(getFleet(t, s), "mi", ver); envs != 0 {
			t.Fatalf("%d environments left after deactivation", envs)
		}
		if _, err := s.client.PutFunctionScalingConfig(ctx(t), &lambda.PutFunctionScalingConfigInput{FunctionName: aws.String("mi"),
			Qualifier: aws.String(ver), FunctionScalingConfig: &types.FunctionScalingConfig{
				MinExecutionEnvironments: aws.Int32(3), MaxExecutionEnvironments: aws.Int32(6)}}); err != nil {
			t.Fatal(err)
		}
		waitVersionState(t, s, "mi", ver, types.StateActive)
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("mi"), Qualifier: aws.String(ver), Payload: []byte(`{"back":true}`)})
		if string(out.Payload) != `{"back":true}` {
			t.Fatalf("after reactivation: %s", out.Payload)
		}
		// A new config on an active version becomes the applied one once the
		// fleet is within it.
		if _, err := s.client.PutFunctionScalingConfig(ctx(t), &lambda.PutFunctionScalingConfigInput{FunctionName: aws.String("mi"),
			Qualifier: aws.String(ver), FunctionScalingConfig: &types.FunctionScalingConfig{
				MinExecutionEnvironments: aws.Int32(2), MaxExecutionEnvironments: aws.Int32(6)}}); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 30*time.Second, func() error {
			sc, err := s.client.GetFunctionScalingConfig(ctx(t), &lambda.GetFunctionScalingConfigInput{FunctionName: aws.String("mi"), Qualifier: aws.String(ver)})
			if err != nil {
				return err
			}
			if a := sc.AppliedFunctionScalingConfig; a == nil || aws.ToInt32(a.MinExecutionEnvironments) != 2 || aws.ToInt32(a.MaxExecutionEnvironments) != 6 {
				envs, _, _ := readyEnvs(getFleet(t, s), "mi", ver)
				return fmt.Errorf("applied %+v with %d ready environments, want min 2, max 6", a, envs)
			}
			return nil
		})
	})
}

// publishBounded publishes name and pins its environments to exactly n.
func publishBounded(t *testing.T, s *shoal, name string, n int32) string {
	t.Helper()
	v, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	ver := aws.ToString(v.Version)
	if _, err := s.client.PutFunctionScalingConfig(ctx(t), &lambda.PutFunctionScalingConfigInput{FunctionName: aws.String(name),
		Qualifier: aws.String(ver), FunctionScalingConfig: &types.FunctionScalingConfig{
			MinExecutionEnvironments: aws.Int32(n), MaxExecutionEnvironments: aws.Int32(n)}}); err != nil {
		t.Fatal(err)
	}
	waitVersionState(t, s, name, ver, types.StateActive)
	poll.Until(t, time.Minute, func() error {
		if envs, _, _ := readyEnvs(getFleet(t, s), name, ver); envs != int(n) {
			return fmt.Errorf("%d ready environments, want %d", envs, n)
		}
		return nil
	})
	return ver
}

func TestManagedSaturationThrottlesAtOnce(t *testing.T) {
	s := managedShoal(t)
	cpArn := createCapacityProvider(t, s, "cp-sat")
	createManagedFn(t, s, "sat", cpArn, 4)
	ver := publishBounded(t, s, "sat", 3) // 3 environments × 4 slots, and no more
	const slots = 12
	done := make(chan struct{}, slots)
	var wg sync.WaitGroup
	for range slots {
		wg.Go(func() {
			out, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("sat"), Qualifier: aws.String(ver),
				Payload: []byte(`{"op":"sleep","ms":3000}`)})
			if err != nil || out.FunctionError != nil {
				t.Errorf("a busy invocation failed: %v", err)
			}
			done <- struct{}{}
		})
	}
	poll.Until(t, 20*time.Second, func() error {
		if _, _, inFlight := readyEnvs(getFleet(t, s), "sat", ver); inFlight < slots {
			return fmt.Errorf("%d of %d slots busy", inFlight, slots)
		}
		return nil
	})
	_, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("sat"), Qualifier: aws.String(ver)})
	finished := len(done)
	if !isErr[*types.TooManyRequestsException](err) {
		t.Fatalf("invocation beyond every slot: %v, want TooManyRequestsException", err)
	}
	if finished != 0 {
		t.Fatalf("the throttle came after %d busy invocations finished: it waited", finished)
	}
	wg.Wait()
}

// agentPid finds the process of the agent of instance id.
func agentPid(t *testing.T, id string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmd), "\x00")
		if slices.Contains(args, "agent") && slices.Contains(args, id) {
			return pid
		}
	}
	t.Fatalf("no agent process for instance %s", id)
	return 0
}

// checkProcessSettings checks that an agent process runs with internal/sysmon's
// GODEBUG setting and its functions' processes without it, and that both run
// under SCHED_BATCH (internal/sched).
func checkProcessSettings(t *testing.T, agent int) {
	t.Helper()
	godebug := func(pid int) string {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
				return v
			}
		}
		return ""
	}
	// The "policy" line of /proc/<pid>/sched: 0 SCHED_NORMAL, 3 SCHED_BATCH.
	policy := func(pid int) string {
		sched, err := os.ReadFile(fmt.Sprintf("/proc/%d/sched", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(sched), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "policy" {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("no policy in /proc/%d/sched", pid)
		return ""
	}
	if got := godebug(agent); !strings.Contains(got, sysmon.Setting) {
		t.Errorf("agent %d runs with GODEBUG=%q, want it to hold %s", agent, got, sysmon.Setting)
	}
	if got := policy(agent); got != "3" {
		t.Errorf("agent %d runs under scheduling policy %s, want 3 (SCHED_BATCH)", agent, got)
	}
	// The agent's descendants: its functions' processes.
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := strings.LastIndexByte(string(stat), ')'); err == nil && i > 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
				parent[pid], _ = strconv.Atoi(f[1])
			}
		}
	}
	fns := 0
	for pid := range parent {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == agent {
				if got := godebug(pid); strings.Contains(got, "schedtrace") {
					t.Errorf("function process %d runs with GODEBUG=%q", pid, got)
				}
				if got := policy(pid); got != "3" {
					t.Errorf("function process %d runs under scheduling policy %s, want 3 (SCHED_BATCH)", pid, got)
				}
				fns++
				break
			}
		}
	}
	if fns == 0 {
		t.Errorf("agent %d has no function process", agent)
	}
}

func TestManagedInstanceLoss(t *testing.T) {
	s := managedShoal(t)
	cpArn := createCapacityProvider(t, s, "cp-loss")
	createManagedFn(t, s, "loss", cpArn, 10)
	ver := publishBounded(t, s, "loss", 3)

	// The victim: an instance hosting one of the function's environments.
	var victim string
	for _, in := range getFleet(t, s).Instances {
		for _, e := range in.Environments {
			if e.Function == "loss" && e.State == "ready" && in.State == "running" {
				victim = in.ID
			}
		}
	}
	if victim == "" {
		t.Fatal("no instance hosts the function")
	}
	checkProcessSettings(t, agentPid(t, victim))

	type outcome struct {
		start time.Time
		err   error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				out, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("loss"), Qualifier: aws.String(ver),
					Payload: []byte(`{"op":"sleep","ms":50}`)})
				if err == nil && out.FunctionError != nil {
					err = fmt.Errorf("function error %s", out.Payload)
				}
				mu.Lock()
				outcomes = append(outcomes, outcome{start, err})
				mu.Unlock()
			}
		})
	}
	poll.Until(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(outcomes) < 20 {
			return fmt.Errorf("%d invocations so far", len(outcomes))
		}
		return nil
	})
	if err := syscall.Kill(agentPid(t, victim), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The fleet notices the loss.
	var lost time.Time
	poll.Until(t, 30*time.Second, func() error {
		for _, in := range getFleet(t, s).Instances {
			if in.ID == victim && in.State == "running" {
				return fmt.Errorf("instance %s still running", victim)
			}
		}
		lost = time.Now()
		return nil
	})
	// It is replaced: three ready environments again, on running instances.
	poll.Until(t, 2*time.Minute, func() error {
		envs, zones, _ := readyEnvs(getFleet(t, s), "loss", ver)
		if envs != 3 {
			return fmt.Errorf("%d ready environments in zones %v", envs, zones)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	var after, failedAfter, before, failedBefore int
	for _, o := range outcomes {
		if o.start.After(lost) {
			after++
			if o.err != nil {
				failedAfter++
				t.Errorf("invocation accepted after the loss failed: %v", o.err)
			}
		} else {
			before++
			if o.err != nil {
				failedBefore++
			}
		}
	}
	if after == 0 {
		t.Fatal("no invocation ran after the loss was noticed")
	}
	t.Logf("before the loss was noticed: %d invocations, %d failed (in flight on the lost instance); after: %d, %d failed",
		before, failedBefore, after, failedAfter)
}

// TestManagedScalingLimit: a version whose minimum environments the capacity
// provider's MaxVCpuCount can never hold fails with
// CapacityProviderScalingLimitExceeded instead of staying Pending, and becomes
// Active once the limit is raised.
func TestManagedScalingLimit(t *testing.T) {
	s := managedShoal(t)
	out, err := s.client.CreateCapacityProvider(ctx(t), &lambda.CreateCapacityProviderInput{
		CapacityProviderName: aws.String("small"),
		VpcConfig:            &types.CapacityProviderVpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}},
		PermissionsConfig:    &types.CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: aws.String("arn:aws:iam::123456789012:role/operator")},
		InstanceRequirements: &types.InstanceRequirements{AllowedInstanceTypes: []string{"m7i.large"}},
		// One m7i.large (2 vCPUs) holds two environments of 1 vCPU.
		CapacityProviderScalingConfig: &types.CapacityProviderScalingConfig{MaxVCpuCount: aws.Int32(2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	createManagedFn(t, s, "lim", aws.ToString(out.CapacityProvider.CapacityProviderArn), 4)
	v, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("lim")})
	if err != nil {
		t.Fatal(err)
	}
	ver := aws.ToString(v.Version)
	waitVersionState(t, s, "lim", ver, types.StateFailed)
	got, err := s.client.GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("lim"), Qualifier: aws.String(ver)})
	if err != nil {
		t.Fatal(err)
	}
	if got.StateReasonCode != types.StateReasonCode("CapacityProviderScalingLimitExceeded") || !strings.Contains(aws.ToString(got.StateReason), "MaxVCpuCount (2)") {
		t.Errorf("failed with %s: %s", got.StateReasonCode, aws.ToString(got.StateReason))
	}
	if _, err := s.client.UpdateCapacityProvider(ctx(t), &lambda.UpdateCapacityProviderInput{CapacityProviderName: aws.String("small"),
		CapacityProviderScalingConfig: &types.CapacityProviderScalingConfig{MaxVCpuCount: aws.Int32(6)}}); err != nil {
		t.Fatal(err)
	}
	waitVersionState(t, s, "lim", ver, types.StateActive)

	// A version whose environments cannot initialise fails with the reason
	// code of its init error.
	if _, err := s.client.CreateFunction(ctx(t), &lambda.CreateFunctionInput{
		FunctionName: aws.String("badinit"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: goFnZip}, MemorySize: aws.Int32(2048),
		Environment: &types.Environment{Variables: map[string]string{"FAIL_INIT": "1"}},
		PublishTo:   types.FunctionVersionLatestPublishedLatestPublished,
		CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
			CapacityProviderArn: out.CapacityProvider.CapacityProviderArn}},
	}); err != nil {
		t.Fatal(err)
	}
	waitVersionState(t, s, "badinit", "$LATEST.PUBLISHED", types.StateFailed)
	got, err = s.client.GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("badinit"), Qualifier: aws.String("$LATEST.PUBLISHED")})
	if err != nil {
		t.Fatal(err)
	}
	if got.StateReasonCode != types.StateReasonCode("FunctionError.RuntimeInitError") || !strings.Contains(aws.ToString(got.StateReason), "Runtime.ExitError") {
		t.Errorf("failed with %s: %s", got.StateReasonCode, aws.ToString(got.StateReason))
	}
}

// TestManagedActiveThroughLoss: when the only environment of an active version
// crashes, the version stays Active while the fleet replaces it: callers get
// 429 (which the SDKs retry) until it is back, never Pending's 409.
func TestManagedActiveThroughLoss(t *testing.T) {
	s := managedShoal(t)
	createManagedFn(t, s, "one", createCapacityProvider(t, s, "cp1"), 2)
	ver := publishBounded(t, s, "one", 1)
	out, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("one"), Qualifier: aws.String(ver),
		Payload: []byte(`{"op":"crash"}`)})
	if err != nil || aws.ToString(out.FunctionError) == "" {
		t.Fatalf("crash: %v, %v", out, err)
	}
	codes := map[string]int{}
	poll.Until(t, time.Minute, func() error {
		got, err := s.client.GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("one"), Qualifier: aws.String(ver)})
		if err != nil {
			return err
		}
		if got.State != types.StateActive {
			t.Fatalf("the version is %s after losing its environment", got.State)
		}
		out, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("one"), Qualifier: aws.String(ver), Payload: []byte(`{"a":1}`)})
		if err != nil {
			codes[errCode(err)]++
			return err
		}
		codes["200"]++
		if string(out.Payload) != `{"a":1}` {
			t.Fatalf("payload %s", out.Payload)
		}
		return nil
	})
	t.Logf("answers while the environment was replaced: %v", codes)
	for code := range codes {
		if code != "200" && code != "TooManyRequestsException" {
			t.Errorf("answers while the environment was replaced: %v; want only 200 and TooManyRequestsException", codes)
		}
	}
}

// TestManagedRepublishInPlace: republishing $LATEST.PUBLISHED makes it Pending
// until environments of the new revision are up; then every invocation runs
// the new configuration, and the old revision's environments are drained, as
// are those of a deleted version.
func TestManagedRepublishInPlace(t *testing.T) {
	s := managedShoal(t)
	cpArn := createCapacityProvider(t, s, "cp1")
	lp := aws.String("$LATEST.PUBLISHED")
	fn := aws.String("re")
	mark := func(v string) *types.Environment { return &types.Environment{Variables: map[string]string{"MARK": v}} }
	if _, err := s.client.CreateFunction(ctx(t), &lambda.CreateFunctionInput{
		FunctionName: fn, Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: goFnZip}, MemorySize: aws.Int32(2048), Environment: mark("v1"),
		PublishTo: types.FunctionVersionLatestPublishedLatestPublished,
		CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
			CapacityProviderArn: aws.String(cpArn), PerExecutionEnvironmentMaxConcurrency: aws.Int32(4)}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.PutFunctionScalingConfig(ctx(t), &lambda.PutFunctionScalingConfigInput{FunctionName: fn, Qualifier: lp,
		FunctionScalingConfig: &types.FunctionScalingConfig{MinExecutionEnvironments: aws.Int32(1), MaxExecutionEnvironments: aws.Int32(1)}}); err != nil {
		t.Fatal(err)
	}
	waitVersionState(t, s, "re", "$LATEST.PUBLISHED", types.StateActive)
	markOf := func() string {
		t.Helper()
		out, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: fn, Payload: []byte(`{"op":"env"}`)})
		if err != nil {
			t.Fatal(err)
		}
		var env map[string]string
		if err := json.Unmarshal(out.Payload, &env); err != nil {
			t.Fatalf("%v: %s", err, out.Payload)
		}
		return env["MARK"]
	}
	if got := markOf(); got != "v1" {
		t.Fatalf("MARK = %q, want v1", got)
	}
	if _, err := s.client.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{FunctionName: fn, Environment: mark("v2")}); err != nil {
		t.Fatal(err)
	}
	pub, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: fn, PublishTo: types.FunctionVersionLatestPublishedLatestPublished})
	if err != nil || pub.State != types.StatePending {
		t.Fatalf("republish: %v, %v; want Pending", pub, err)
	}
	waitVersionState(t, s, "re", "$LATEST.PUBLISHED", types.StateActive)
	for range 5 {
		if got := markOf(); got != "v2" {
			t.Fatalf("after republishing MARK = %q, want v2", got)
		}
	}
	// The old revision's environment goes; one environment stays.
	poll.Until(t, time.Minute, func() error {
		n := 0
		for _, in := range getFleet(t, s).Instances {
			for _, e := range in.Environments {
				if e.Function == "re" {
					n++
				}
			}
		}
		if n != 1 {
			return fmt.Errorf("%d environments of the function, want 1", n)
		}
		return nil
	})

	// A deleted version's environments go too.
	ver := publishBounded(t, s, "re", 1)
	if _, err := s.client.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: fn, Qualifier: aws.String(ver)}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, func() error {
		if envs, _, _ := readyEnvs(getFleet(t, s), "re", ver); envs != 0 {
			return fmt.Errorf("%d environments of deleted version %s", envs, ver)
		}
		return nil
	})
}
