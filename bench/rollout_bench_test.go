package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/sigv4"
)

// Rollouts and rotations on Managed Instances, timed under load: one
// `shoal up` at its defaults (agents' heartbeat 1 s, scaler every 2 s), the
// aws-lambda-go test function (2048 MB, 1 vCPU, 16 invocations per
// environment, 3 environments per version, its minimum), and 8 clients that
// invoke it without pause, each invocation sleeping 20 ms in the handler. A
// failed or throttled invocation fails the benchmark.

// rolloutLoad is the 8 clients: every answer's version and when its request
// was sent.
type rolloutLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	runs [][]versionRun
	errs []string
}

type versionRun struct {
	sent    time.Time
	version string
}

func startRolloutLoad(b *testing.B, client *lambda.Client, qualifier string) *rolloutLoad {
	b.Helper()
	l := &rolloutLoad{stop: make(chan struct{}), runs: make([][]versionRun, 8)}
	for k := range l.runs {
		l.wg.Go(func() {
			for range 1_000_000 {
				select {
				case <-l.stop:
					return
				default:
				}
				sent := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String(qualifier),
					Payload: []byte(`{"op":"sleep","ms":20}`)}, func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
				cancel()
				l.mu.Lock()
				switch {
				case err != nil:
					l.errs = append(l.errs, err.Error())
				case out.FunctionError != nil:
					l.errs = append(l.errs, string(out.Payload))
				default:
					l.runs[k] = append(l.runs[k], versionRun{sent: sent, version: aws.ToString(out.ExecutedVersion)})
				}
				l.mu.Unlock()
			}
		})
	}
	b.Cleanup(l.end)
	return l
}

func (l *rolloutLoad) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// movedAt returns when the traffic had moved to version: the latest, over
// the clients, of the first request after which every answer of the client
// came from version; ok is false while some client's last answer is not
// from it or it has fewer than n answers from it.
func (l *rolloutLoad) movedAt(version string, n int) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var at time.Time
	for _, rs := range l.runs {
		i := len(rs)
		for i > 0 && rs[i-1].version == version {
			i--
		}
		if len(rs)-i < n {
			return time.Time{}, false
		}
		if rs[i].sent.After(at) {
			at = rs[i].sent
		}
	}
	return at, true
}

func (l *rolloutLoad) failures(b *testing.B) {
	b.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		b.Fatalf("%d invocations failed; the first: %v", len(l.errs), l.errs[:min(3, len(l.errs))])
	}
}

func (l *rolloutLoad) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, rs := range l.runs {
		n += len(rs)
	}
	return n
}

// BenchmarkRollout publishes a new version of the function and moves the
// alias the clients invoke to it, b.N times, and reports the rollout time:
// from the PublishVersion call to the moment after which every client's
// invocations run on the new version (rollout-s, the median; rollout-max-s).
// The new version's environments start first; the alias keeps running the
// old version until the new one is Active. Each old version is then deleted
// and drains, before the next round starts.
//
// Run it with -benchtime 5x.
func BenchmarkRollout(b *testing.B) {
	_, _, client := shoalUp(b)
	ctx := context.Background()
	version := createManaged(b, client, 16, 3, goFn)
	waitActive(b, client, "echo", version, 2*time.Minute)
	// The minimum of 3 environments, no maximum: each version is sized as
	// Lambda sizes it.
	unbound := func(v string) {
		if _, err := client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: aws.String("echo"),
			Qualifier: aws.String(v), FunctionScalingConfig: &types.FunctionScalingConfig{MinExecutionEnvironments: aws.Int32(3)}}); err != nil {
			b.Fatal(err)
		}
	}
	unbound(version)
	if _, err := client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("echo"), Name: aws.String("live"),
		FunctionVersion: aws.String(version)}); err != nil {
		b.Fatal(err)
	}
	l := startRolloutLoad(b, client, "live")
	until(b, time.Minute, "every client on version "+version, func() (bool, error) { _, ok := l.movedAt(version, 5); return ok, nil })
	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		if _, err := client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("echo"),
			Environment: &types.Environment{Variables: map[string]string{"ROUND": fmt.Sprint(i)}}}); err != nil {
			b.Fatal(err)
		}
		until(b, time.Minute, "the update", func() (bool, error) {
			got, err := client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("echo")})
			return err == nil && got.LastUpdateStatus == types.LastUpdateStatusSuccessful, err
		})
		published := time.Now()
		out, err := client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("echo")})
		if err != nil {
			b.Fatal(err)
		}
		next := aws.ToString(out.Version)
		unbound(next)
		if _, err := client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("echo"), Name: aws.String("live"),
			FunctionVersion: aws.String(next)}); err != nil {
			b.Fatal(err)
		}
		var moved time.Time
		until(b, 3*time.Minute, "every client on version "+next, func() (bool, error) {
			at, ok := l.movedAt(next, 20)
			moved = at
			return ok, nil
		})
		took = append(took, moved.Sub(published))
		l.failures(b)
		b.StopTimer()
		if _, err := client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("echo"), Qualifier: aws.String(version)}); err != nil {
			b.Fatal(err)
		}
		version = next
		b.StartTimer()
	}
	b.StopTimer()
	l.end()
	l.failures(b)
	slices.Sort(took)
	b.ReportMetric(took[len(took)/2].Seconds(), "rollout-s")
	b.ReportMetric(took[len(took)-1].Seconds(), "rollout-max-s")
	b.ReportMetric(float64(l.total()), "invocations")
	b.ReportMetric(0, "failed")
}

// BenchmarkInstanceReplacement runs the function's 3 environments on a
// capacity provider whose instances live 30 s (the tag
// shoal:max-instance-lifetime) under the clients' load until b.N instances
// have been replaced, and reports for each replaced instance (medians, and
// the longest):
//
//   - replace-s: from its replacement's launch to its own termination (the
//     replacement boots, takes an environment, the old environment drains,
//     then the instance);
//   - due-to-gone-s: from the end of its lifetime to its termination, which
//     also holds the wait for its turn (a tenth of the fleet, at least one
//     instance, is replaced at a time).
//
// Run it with -benchtime 6x (every instance of the fleet replaced twice).
func BenchmarkInstanceReplacement(b *testing.B) {
	const lifetime = 30 * time.Second
	endpoint, _, client := shoalUp(b)
	ctx := context.Background()
	if _, err := client.CreateCapacityProvider(ctx, &lambda.CreateCapacityProviderInput{
		CapacityProviderName: aws.String("bench"),
		VpcConfig:            &types.CapacityProviderVpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}},
		PermissionsConfig:    &types.CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: aws.String("arn:aws:iam::123456789012:role/op")},
		Tags:                 map[string]string{"shoal:max-instance-lifetime": lifetime.String()},
	}); err != nil {
		b.Fatal(err)
	}
	cp, err := client.GetCapacityProvider(ctx, &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String("bench")})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("echo"), Runtime: goFn.runtime, Handler: aws.String(goFn.handler),
		Role: aws.String("arn:aws:iam::123456789012:role/bench"), Code: &types.FunctionCode{ZipFile: goFn.zip(b)},
		MemorySize: aws.Int32(2048), Timeout: aws.Int32(30),
		CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
			CapacityProviderArn: cp.CapacityProvider.CapacityProviderArn, PerExecutionEnvironmentMaxConcurrency: aws.Int32(16),
			ExecutionEnvironmentMemoryGiBPerVCpu: aws.Float64(2)}},
	}); err != nil {
		b.Fatal(err)
	}
	v, err := client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("echo")})
	if err != nil {
		b.Fatal(err)
	}
	version := aws.ToString(v.Version)
	waitActive(b, client, "echo", version, 2*time.Minute)
	creds, _ := keysByHost.Load(strings.TrimPrefix(endpoint, "http://"))
	hc := &http.Client{Transport: &sigv4.Transport{Credentials: creds.(aws.CredentialsProvider), Region: "us-east-1"}}
	start := time.Now()
	l := startRolloutLoad(b, client, version)
	b.ResetTimer()
	var fleet benchFleet
	until(b, time.Duration(b.N+6)*lifetime, fmt.Sprintf("%d instances replaced", b.N), func() (bool, error) {
		fleet = readFleet(b, hc, endpoint, start)
		return len(fleet.Terminated) >= b.N, nil
	})
	b.StopTimer()
	l.end()
	l.failures(b)
	all := append(slices.Clone(fleet.Instances), fleet.Terminated...)
	var replace, dueToGone []time.Duration
	for _, old := range fleet.Terminated {
		due := old.LaunchedAt.Add(lifetime)
		// Its replacement: the instance of its zone launched last before it
		// was terminated, once it was due.
		var repl *benchInstance
		for i := range all {
			in := &all[i]
			if in.Zone == old.Zone && in.ID != old.ID && !in.LaunchedAt.Before(due) && in.LaunchedAt.Before(old.TerminatedAt) &&
				(repl == nil || in.LaunchedAt.After(repl.LaunchedAt)) {
				repl = in
			}
		}
		if repl == nil {
			b.Fatalf("instance %s (zone %s, terminated %v): no replacement launched in its zone", old.ID, old.Zone, old.TerminatedAt)
		}
		replace = append(replace, old.TerminatedAt.Sub(repl.LaunchedAt))
		dueToGone = append(dueToGone, old.TerminatedAt.Sub(due))
	}
	slices.Sort(replace)
	slices.Sort(dueToGone)
	b.ReportMetric(replace[len(replace)/2].Seconds(), "replace-s")
	b.ReportMetric(replace[len(replace)-1].Seconds(), "replace-max-s")
	b.ReportMetric(dueToGone[len(dueToGone)/2].Seconds(), "due-to-gone-s")
	b.ReportMetric(dueToGone[len(dueToGone)-1].Seconds(), "due-to-gone-max-s")
	b.ReportMetric(float64(len(fleet.Terminated)), "replaced")
	b.ReportMetric(float64(l.total()), "invocations")
	b.ReportMetric(0, "failed")
}

type benchFleet struct {
	Instances  []benchInstance `json:"instances"`
	Terminated []benchInstance `json:"terminated"`
}

type benchInstance struct {
	ID           string    `json:"id"`
	Zone         string    `json:"zone"`
	LaunchedAt   time.Time `json:"launched_at"`
	TerminatedAt time.Time `json:"terminated_at"`
}

func readFleet(b *testing.B, hc *http.Client, endpoint string, since time.Time) benchFleet {
	b.Helper()
	resp, err := hc.Get(endpoint + "/shoal/v1/fleet?" + url.Values{"terminated_since": {since.UTC().Format(time.RFC3339Nano)}}.Encode())
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var f benchFleet
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		b.Fatal(err)
	}
	return f
}
