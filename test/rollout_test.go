package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/poll"
)

// ran is one invocation as a load client saw it.
type ran struct {
	version, mark, memory string
}

// load is clients invoking one function without pause until stopped (each
// at most maxLoadInvocations times): every answer is recorded, and every
// error — a throttle, a conflict, a function error — is a failure.
type load struct {
	t       *testing.T
	s       *shoal
	fn, q   string
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	results [][]ran
	fails   []string
}

const maxLoadInvocations = 20000

// startLoad starts n clients on fn:q; client k's invocations each take
// ms(k) milliseconds.
func startLoad(t *testing.T, s *shoal, fn, q string, n int, ms func(k int) int) *load {
	l := &load{t: t, s: s, fn: fn, q: q, stop: make(chan struct{}), results: make([][]ran, n)}
	for k := range n {
		l.wg.Go(func() {
			for range maxLoadInvocations {
				select {
				case <-l.stop:
					return
				default:
				}
				l.invoke(k, l.q, ms(k))
			}
		})
	}
	t.Cleanup(l.end)
	return l
}

// invoke makes one invocation of qualifier q and records it (k < 0: not a
// client's).
func (l *load) invoke(k int, q string, ms int) {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := l.s.noRetry.Invoke(c, &lambda.InvokeInput{FunctionName: aws.String(l.fn), Qualifier: aws.String(q),
		Payload: fmt.Appendf(nil, `{"op":"env","ms":%d}`, ms)})
	var r ran
	if err == nil && out.FunctionError != nil {
		err = fmt.Errorf("function error %s: %s", aws.ToString(out.FunctionError), out.Payload)
	}
	if err == nil {
		var env map[string]string
		if err = json.Unmarshal(out.Payload, &env); err == nil {
			r = ran{version: aws.ToString(out.ExecutedVersion), mark: env["MARK"], memory: env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.fails = append(l.fails, fmt.Sprintf("%s (code %s)", err, errCode(err)))
		return
	}
	if k >= 0 {
		l.results[k] = append(l.results[k], r)
	}
}

// long makes n invocations of ms milliseconds each through the load's
// qualifier, in the background: they are in flight while what follows
// happens.
func (l *load) long(n, ms int) {
	for range n {
		l.wg.Go(func() { l.invoke(-1, l.q, ms) })
	}
}

// hold makes n invocations of ms milliseconds each of version q in the
// background, and returns once the fleet shows them in flight in q's
// environments (the clients must have left q).
func (l *load) hold(q string, n, ms int) {
	l.t.Helper()
	for range n {
		l.wg.Go(func() { l.invoke(-1, q, ms) })
	}
	poll.Until(l.t, time.Minute, func() error {
		in := 0
		for _, inst := range getFleet(l.t, l.s).Instances {
			for _, e := range inst.Environments {
				if e.Function == l.fn && e.Version == q {
					in += e.InFlight
				}
			}
		}
		if in < n {
			return fmt.Errorf("%d invocations in flight on %s:%s; want %d", in, l.fn, q, n)
		}
		return nil
	})
}

func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// settled reports whether every client's last n answers carry mark.
func (l *load) settled(mark string, n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, rs := range l.results {
		if len(rs) < n {
			return fmt.Errorf("client %d has %d answers", k, len(rs))
		}
		for _, r := range rs[len(rs)-n:] {
			if r.mark != mark {
				return fmt.Errorf("client %d's last %d answers are not all %s: %+v", k, n, mark, r)
			}
		}
	}
	return nil
}

func (l *load) summary() (total int, marks map[string]int, fails []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	marks = map[string]int{}
	for _, rs := range l.results {
		for _, r := range rs {
			total++
			marks[r.mark+" v"+r.version+" "+r.memory+" MB"]++
		}
	}
	return total, marks, append([]string(nil), l.fails...)
}

// fleetRecord is GET /shoal/v1/fleet with the terminated instances.
type fleetRecord struct {
	Instances  []fleetInst `json:"instances"`
	Terminated []fleetInst `json:"terminated"`
}

type fleetInst struct {
	ID                 string    `json:"id"`
	CapacityProvider   string    `json:"capacity_provider"`
	State              string    `json:"state"`
	Zone               string    `json:"zone"`
	LaunchedAt         time.Time `json:"launched_at"`
	StartedAt          time.Time `json:"started_at"`
	TerminatedAt       time.Time `json:"terminated_at"`
	RotationDue        time.Time `json:"rotation_due"`
	DrainedInvocations uint64    `json:"drained_invocations"`
	CutInvocations     uint64    `json:"cut_invocations"`
	Environments       []struct {
		ID       string `json:"id"`
		Function string `json:"function"`
		Version  string `json:"version"`
		State    string `json:"state"`
		InFlight int    `json:"in_flight"`
	} `json:"environments"`
}

func getFleetSince(t *testing.T, s *shoal, since time.Time) fleetRecord {
	t.Helper()
	resp, err := s.http.Get(s.endpoint + "/shoal/v1/fleet?" + url.Values{"terminated_since": {since.UTC().Format(time.RFC3339Nano)}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var f fleetRecord
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		t.Fatal(err)
	}
	return f
}

// drains sums what the drains of every instance, live or terminated since
// since, did to the invocations in flight.
func drains(t *testing.T, s *shoal, since time.Time) (drained, cut uint64) {
	f := getFleetSince(t, s, since)
	for _, in := range append(f.Instances, f.Terminated...) {
		drained += in.DrainedInvocations
		cut += in.CutInvocations
	}
	return drained, cut
}

func setMark(t *testing.T, s *shoal, fn, mark string, memory int32) {
	t.Helper()
	if _, err := s.client.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn),
		MemorySize: aws.Int32(memory), Environment: &types.Environment{Variables: map[string]string{"MARK": mark}}}); err != nil {
		t.Fatal(err)
	}
}

func scaleTo(t *testing.T, s *shoal, fn, qualifier string, minEnvs int32) {
	t.Helper()
	if _, err := s.client.PutFunctionScalingConfig(ctx(t), &lambda.PutFunctionScalingConfigInput{FunctionName: aws.String(fn),
		Qualifier: aws.String(qualifier), FunctionScalingConfig: &types.FunctionScalingConfig{MinExecutionEnvironments: aws.Int32(minEnvs)}}); err != nil {
		t.Fatal(err)
	}
}

// TestRolloutUnderLoad: eight clients invoke a Managed Instances function
// through an alias without pause while a new version is published and the
// alias moved to it, then while the function's memory changes (published to
// $LATEST.PUBLISHED, the alias moved there, then republished in place). No
// invocation fails or is throttled; the new version takes the traffic only
// once its environments are ready, and the old environments drain: every
// invocation in flight when its environment began draining finishes.
func TestRolloutUnderLoad(t *testing.T) {
	s := managedShoal(t)
	cpArn := createCapacityProvider(t, s, "roll-cp")
	const fn = "roll"
	if _, err := s.client.CreateFunction(ctx(t), &lambda.CreateFunctionInput{
		FunctionName: aws.String(fn), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: goFnZip}, MemorySize: aws.Int32(2048), Timeout: aws.Int32(60),
		Environment: &types.Environment{Variables: map[string]string{"MARK": "v1"}},
		CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
			CapacityProviderArn: aws.String(cpArn), PerExecutionEnvironmentMaxConcurrency: aws.Int32(16)}},
	}); err != nil {
		t.Fatal(err)
	}
	publish := func(to types.FunctionVersionLatestPublished) string {
		t.Helper()
		out, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String(fn), PublishTo: to})
		if err != nil {
			t.Fatal(err)
		}
		if out.State != types.StatePending {
			t.Fatalf("published %s is %s; want Pending", aws.ToString(out.Version), out.State)
		}
		return aws.ToString(out.Version)
	}
	moveAlias := func(to string) {
		t.Helper()
		if _, err := s.client.UpdateAlias(ctx(t), &lambda.UpdateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"),
			FunctionVersion: aws.String(to)}); err != nil {
			t.Fatal(err)
		}
	}
	deleteVersion := func(v string) {
		t.Helper()
		if _, err := s.client.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(fn), Qualifier: aws.String(v)}); err != nil {
			t.Fatal(err)
		}
	}
	v1 := publish("")
	scaleTo(t, s, fn, v1, 2)
	waitVersionState(t, s, fn, v1, types.StateActive)
	if _, err := s.client.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"),
		FunctionVersion: aws.String(v1)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l := startLoad(t, s, fn, "live", 8, func(k int) int { return 100 + 150*k })
	poll.Until(t, time.Minute, func() error { return l.settled("v1", 5) })

	// A new version, and the alias moved to it while it is still Pending:
	// invocations in flight then run on, and the alias's traffic moves once
	// the new version is Active. Version 1 is deleted with invocations in
	// flight: its environments drain and those finish.
	setMark(t, s, fn, "v2", 2048)
	published := time.Now()
	v2 := publish("")
	scaleTo(t, s, fn, v2, 2)
	moveAlias(v2)
	l.long(2, 5000)
	poll.Until(t, 3*time.Minute, func() error { return l.settled("v2", 10) })
	t.Logf("version %s took all the traffic %v after it was published", v2, time.Since(published).Round(100*time.Millisecond))
	l.hold(v1, 2, 5000)
	deleteVersion(v1)

	// The memory changes: published to $LATEST.PUBLISHED, the alias moved there.
	setMark(t, s, fn, "v3", 4096)
	lp := publish(types.FunctionVersionLatestPublishedLatestPublished)
	scaleTo(t, s, fn, lp, 2)
	moveAlias(lp)
	l.long(2, 5000)
	poll.Until(t, 3*time.Minute, func() error { return l.settled("v3", 10) })
	l.hold(v2, 2, 5000)
	deleteVersion(v2)

	// And again, republished in place: the previous revision's environments
	// drain once the new ones have taken the traffic.
	setMark(t, s, fn, "v4", 2048)
	publish(types.FunctionVersionLatestPublishedLatestPublished)
	l.long(2, 5000)
	poll.Until(t, 3*time.Minute, func() error { return l.settled("v4", 10) })
	// Only the last revision's environments are left, once the drains end.
	poll.Until(t, 2*time.Minute, func() error {
		for _, in := range getFleetSince(t, s, start).Instances {
			for _, e := range in.Environments {
				if e.Function == fn && e.State != "ready" {
					return fmt.Errorf("environment %s of %s:%s is %s", e.ID, fn, e.Version, e.State)
				}
			}
		}
		return nil
	})
	l.end()

	total, marks, fails := l.summary()
	t.Logf("%d invocations by 8 clients in %v: %v", total, time.Since(start).Round(time.Second), marks)
	if len(fails) > 0 {
		t.Fatalf("%d of %d invocations failed; the first: %v", len(fails), total, fails[:min(5, len(fails))])
	}
	for m := range marks {
		if !strings.HasPrefix(m, "v1 v"+v1+" 2048 ") && !strings.HasPrefix(m, "v2 v"+v2+" 2048 ") &&
			!strings.HasPrefix(m, "v3 v"+lp+" 4096 ") && !strings.HasPrefix(m, "v4 v"+lp+" 2048 ") {
			t.Errorf("an invocation ran %q: a mark, version and memory that do not belong together", m)
		}
	}
	drained, cut := drains(t, s, start)
	t.Logf("invocations in flight when their environment began draining: %d finished, %d cut", drained, cut)
	if cut != 0 || drained < 4 {
		t.Fatalf("drains: %d in-flight invocations finished, %d cut; want the 4 held on versions %s and %s among those finished, none cut", drained, cut, v1, v2)
	}
}

// TestInstanceRotation: with a maximum instance lifetime of 20 s (a tag of
// the capacity provider), every instance is replaced at least once under
// steady load, with no failed invocation, and the usage ledger's instance
// time matches the launch and terminate times the fleet recorded.
func TestInstanceRotation(t *testing.T) {
	s := managedShoal(t)
	out, err := s.client.CreateCapacityProvider(ctx(t), &lambda.CreateCapacityProviderInput{
		CapacityProviderName: aws.String("rot-cp"),
		VpcConfig:            &types.CapacityProviderVpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}},
		PermissionsConfig:    &types.CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: aws.String("arn:aws:iam::123456789012:role/operator")},
		InstanceRequirements: &types.InstanceRequirements{AllowedInstanceTypes: []string{"m7i.large"}},
		Tags:                 map[string]string{"shoal:max-instance-lifetime": "20s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	createManagedFn(t, s, "rot", aws.ToString(out.CapacityProvider.CapacityProviderArn), 16)
	ver := publishBounded(t, s, "rot", 3)
	start := time.Now()
	first := map[string]bool{}
	for _, in := range getFleetSince(t, s, start).Instances {
		if in.CapacityProvider == "rot-cp" && in.State != "terminated" {
			first[in.ID] = true
			if want := in.LaunchedAt.Add(20 * time.Second); !in.RotationDue.Equal(want) {
				t.Errorf("instance %s is due for rotation at %v; want launch + 20 s, %v", in.ID, in.RotationDue, want)
			}
		}
	}
	if len(first) < 3 {
		t.Fatalf("%d instances; want at least 3", len(first))
	}
	// shoal fleet shows each instance's age and when its rotation is due,
	// both from the same clock reading: together the lifetime, 20 s, less
	// what the two truncations to the second take off.
	fleetOut, errOut, code := shoalCLI(t, s, "fleet")
	if code != 0 || !strings.Contains(fleetOut, "AGE") || !strings.Contains(fleetOut, "ROTATION DUE") {
		t.Fatalf("shoal fleet exit %d: %s%s", code, fleetOut, errOut)
	}
	row := regexp.MustCompile(`(?m)^(i-\S+)\s+rot-cp\s.*?\s(\d+)s\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(in (\d+)s|now)\s`)
	shown := 0
	for _, m := range row.FindAllStringSubmatch(fleetOut, -1) {
		if !first[m[1]] {
			continue
		}
		shown++
		age, _ := strconv.Atoi(m[2])
		if m[3] == "now" {
			if age < 20 {
				t.Errorf("shoal fleet: instance %s, %d s old, is due for rotation now; its lifetime is 20 s", m[1], age)
			}
			continue
		}
		left, _ := strconv.Atoi(m[4])
		if sum := age + left; sum < 19 || sum > 20 {
			t.Errorf("shoal fleet: instance %s is %d s old and due for rotation in %d s; want 20 s in all", m[1], age, left)
		}
	}
	if shown != len(first) {
		t.Fatalf("shoal fleet shows the age and rotation of %d of the %d instances:\n%s", shown, len(first), fleetOut)
	}
	l := startLoad(t, s, "rot", ver, 8, func(k int) int { return 50 + 50*k })
	poll.Until(t, 5*time.Minute, func() error {
		f := getFleetSince(t, s, start)
		for _, in := range f.Instances {
			if first[in.ID] {
				return fmt.Errorf("instance %s (launched %v ago) is still %s", in.ID, time.Since(in.LaunchedAt).Round(time.Second), in.State)
			}
		}
		return nil
	})
	l.end()
	total, _, fails := l.summary()
	if len(fails) > 0 {
		t.Fatalf("%d of %d invocations failed during the rotations; the first: %v", len(fails), total, fails[:min(5, len(fails))])
	}
	f := getFleetSince(t, s, start)
	t.Logf("%d invocations; %d instances replaced, %d running", total, len(f.Terminated), len(f.Instances))
	for id := range first {
		found := false
		for _, in := range f.Terminated {
			found = found || in.ID == id
		}
		if !found {
			t.Errorf("instance %s is neither running nor in the fleet's history", id)
		}
	}
	if _, cut := drains(t, s, start); cut != 0 {
		t.Errorf("%d invocations cut by a drain", cut)
	}
	// The ledger: each terminated instance's segments cover its life from
	// launch to termination without a gap or an overlap, its billed time from
	// the moment it left pending.
	poll.Until(t, time.Minute, func() error {
		events, err := ledgerSince(s.http, s.endpoint, start.Add(-5*time.Minute))
		if err != nil {
			return err
		}
		segs := map[string][]meter.Event{}
		for _, ev := range events {
			if ev.Kind == meter.KindInstance {
				segs[ev.Instance] = append(segs[ev.Instance], ev)
			}
		}
		for _, in := range f.Terminated {
			ss := segs[in.ID]
			sort.Slice(ss, func(i, j int) bool { return ss[i].Start.Before(ss[j].Start) })
			if len(ss) == 0 {
				return fmt.Errorf("no instance time of %s in the ledger", in.ID)
			}
			at := in.LaunchedAt
			var billed time.Duration
			for _, sg := range ss {
				if !sg.Start.Equal(at) {
					return fmt.Errorf("instance %s: a segment starts at %v, the last ended at %v", in.ID, sg.Start, at)
				}
				at = sg.End
				if sg.Billed() {
					billed += sg.End.Sub(sg.Start)
				}
			}
			if !at.Equal(in.TerminatedAt) {
				return fmt.Errorf("instance %s: the ledger has its time until %v; it was terminated at %v", in.ID, at, in.TerminatedAt)
			}
			if want := in.TerminatedAt.Sub(in.StartedAt); billed != want {
				return fmt.Errorf("instance %s: %v billed in the ledger; %v from its start to its termination", in.ID, billed, want)
			}
		}
		return nil
	})
}

// TestScaleInDrains: when the traffic halves, the scaler removes
// environments and an instance, each drained first, and no invocation fails.
//
// The scaler sizes a version for twice the sum of its environments' peaks in
// flight between two heartbeats, over its peak window; a client that moves to
// another environment within a heartbeat (the agents' heartbeats are not in
// step) counts on both. Invocations of 4 s against heartbeats of 200 ms keep
// that close to the real load: 8 clients hold 8 to 10 environments of 2
// slots (4 or more instances of 2), 4 clients 5 to 7.
func TestScaleInDrains(t *testing.T) {
	s := startShoal(t, func(c *serverConfig) {
		c.AgentBinary = shoalBin
		c.Heartbeat = 200 * time.Millisecond
		c.ScaleInterval = 500 * time.Millisecond
		c.ScalePeakWindow = 6 * time.Second
		c.ScaleInInterval = time.Second
	})
	cpArn := createCapacityProvider(t, s, "shrink-cp")
	createManagedFn(t, s, "shrink", cpArn, 2)
	v, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("shrink")})
	if err != nil {
		t.Fatal(err)
	}
	ver := aws.ToString(v.Version)
	// Room for the whole load before it starts: 8 environments of 2 slots.
	scaleTo(t, s, "shrink", ver, 8)
	waitVersionState(t, s, "shrink", ver, types.StateActive)
	start := time.Now()
	count := func() (envs, instances int) {
		for _, in := range getFleetSince(t, s, start).Instances {
			if in.CapacityProvider != "shrink-cp" || in.State != "running" {
				continue
			}
			instances++
			for _, e := range in.Environments {
				if e.State == "ready" {
					envs++
				}
			}
		}
		return envs, instances
	}
	poll.Until(t, time.Minute, func() error {
		if envs, _ := count(); envs != 8 {
			return fmt.Errorf("%d ready environments; want 8", envs)
		}
		return nil
	})
	busy := startLoad(t, s, "shrink", ver, 4, func(int) int { return 4000 })
	calm := startLoad(t, s, "shrink", ver, 4, func(int) int { return 4000 })
	// The minimum back at 3: the load holds the fleet.
	scaleTo(t, s, "shrink", ver, 3)
	answered := func(l *load, n int) func() error {
		return func() error {
			l.mu.Lock()
			defer l.mu.Unlock()
			for k, rs := range l.results {
				if len(rs) < n {
					return fmt.Errorf("client %d has %d answers; want %d", k, len(rs), n)
				}
			}
			return nil
		}
	}
	poll.Until(t, time.Minute, answered(busy, 3))
	loadedEnvs, loadedInstances := count()
	if loadedEnvs < 7 || loadedInstances < 4 {
		t.Fatalf("8 clients hold %d environments on %d instances; want at least 7 on 4", loadedEnvs, loadedInstances)
	}
	// The traffic halves: the fleet shrinks.
	busy.end()
	halved := time.Now()
	poll.Until(t, 90*time.Second, func() error {
		envs, instances := count()
		if envs >= loadedEnvs || instances >= loadedInstances {
			return fmt.Errorf("%d environments on %d instances; from %d on %d, want fewer of both", envs, instances, loadedEnvs, loadedInstances)
		}
		return nil
	})
	// The calm clients ran on while it shrank.
	calm.mu.Lock()
	n := len(calm.results[0])
	calm.mu.Unlock()
	poll.Until(t, time.Minute, answered(calm, n+1))
	calm.end()
	for name, l := range map[string]*load{"first half": busy, "second half": calm} {
		total, _, fails := l.summary()
		if len(fails) > 0 {
			t.Errorf("%s of the clients: %d of %d invocations failed; the first: %v", name, len(fails), total, fails[:min(5, len(fails))])
		}
	}
	envs, instances := count()
	f := getFleetSince(t, s, halved)
	drained, cut := drains(t, s, halved)
	t.Logf("8 clients: %d environments on %d instances; 4 clients: %d on %d, %v after the traffic halved; %d instances terminated; in flight at drains: %d finished, %d cut",
		loadedEnvs, loadedInstances, envs, instances, time.Since(halved).Round(time.Second), len(f.Terminated), drained, cut)
	if len(f.Terminated) == 0 {
		t.Fatal("no instance was terminated after the traffic halved")
	}
	if cut != 0 {
		t.Fatalf("%d invocations cut by a drain", cut)
	}
}
