package test

import (
	"encoding/base64"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/poll"
)

// publishTwo publishes versions 1 and 2 of fn, which differ in an environment
// variable.
func publishTwo(t *testing.T, s *shoal, fn string) {
	t.Helper()
	for _, tag := range []string{"one", "two"} {
		if _, err := s.client.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn),
			Environment: &types.Environment{Variables: map[string]string{"TAG": tag}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String(fn)}); err != nil {
			t.Fatal(err)
		}
	}
}

func weightedAlias(t *testing.T, s *shoal, fn string, weight float64) {
	t.Helper()
	if _, err := s.client.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"),
		FunctionVersion: aws.String("1"), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": weight}}}); err != nil {
		t.Fatal(err)
	}
}

var startVersionRE = regexp.MustCompile(`START RequestId: \S+ Version: (\$LATEST|\d+)`)

// checkRan invokes fn:live asking for the environment and the log tail, and checks
// that ExecutedVersion, the function's own version and its log say the same
// version ran; it returns that version and the environment.
func checkRan(t *testing.T, s *shoal, fn string) (string, map[string]any) {
	t.Helper()
	out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String(fn), Qualifier: aws.String("live"),
		Payload: []byte(`{"op":"env"}`), LogType: types.LogTypeTail})
	env := decode(t, out.Payload)
	executed := aws.ToString(out.ExecutedVersion)
	tail, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatal(err)
	}
	m := startVersionRE.FindSubmatch(tail)
	tags := map[string]string{"1": "one", "2": "two"}
	if m == nil || string(m[1]) != executed || env["AWS_LAMBDA_FUNCTION_VERSION"] != executed || env["TAG"] != tags[executed] {
		t.Fatalf("ExecutedVersion %s, function version %v (TAG %v), log %q", executed, env["AWS_LAMBDA_FUNCTION_VERSION"], env["TAG"], tail)
	}
	return executed, env
}

// An alias at 0.1 sends a tenth of its invocations to its additional version;
// ExecutedVersion and the log say which version ran. (The 10,000-invocation check
// of the routing decision, at ± 1 %, is registry.TestWeightedAliasRouting; this is
// the whole path, with fewer invocations and a wider margin.)
func TestWeightedAlias(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "canary")
	publishTwo(t, s, "canary")
	weightedAlias(t, s, "canary", 0.1)
	for range 20 {
		checkRan(t, s, "canary")
	}
	const n, workers = 2000, 4
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range n / workers {
				out, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("canary"), Qualifier: aws.String("live"),
					Payload: []byte(fmt.Sprintf(`{"worker":%d}`, w))})
				if err != nil || out.FunctionError != nil {
					t.Errorf("invoke: %v", err)
					return
				}
				mu.Lock()
				counts[aws.ToString(out.ExecutedVersion)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	share := float64(counts["2"]) / n
	t.Logf("%d invocations through an alias at 0.1: %v, %.2f %% on version 2", n, counts, 100*share)
	// 2000 draws at p = 0.1: σ = 0.67 %; ± 2.5 % is 3.7 σ.
	if counts["1"]+counts["2"] != n || math.Abs(share-0.1) > 0.025 {
		t.Errorf("versions %v: %.2f %% on version 2, want 10 %% ± 2.5 %%", counts, 100*share)
	}
	// shoal's log of the function holds a START line per invocation, each naming
	// the version that ran.
	poll.Until(t, 20*time.Second, func() error {
		got := map[string]int{}
		for _, m := range startVersionRE.FindAllStringSubmatch(readLogs(t, s, "canary"), -1) {
			got[m[1]]++
		}
		if got["1"] < counts["1"] || got["2"] < counts["2"] {
			return fmt.Errorf("START lines by version %v, invocations %v", got, counts)
		}
		return nil
	})
}

// Provisioned Concurrency on a weighted alias is shared among its versions by
// weight: each version has provisioned environments of its own, and the alias's
// invocations run on those of the version they are routed to.
func TestWeightedAliasProvisioned(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "pcw")
	publishTwo(t, s, "pcw")
	weightedAlias(t, s, "pcw", 0.5)
	if _, err := s.client.PutProvisionedConcurrencyConfig(ctx(t), &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("pcw"), Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, func() error {
		got, err := s.client.GetProvisionedConcurrencyConfig(ctx(t), &lambda.GetProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("pcw"), Qualifier: aws.String("live")})
		if err != nil {
			return err
		}
		if got.Status != types.ProvisionedConcurrencyStatusEnumReady || aws.ToInt32(got.AllocatedProvisionedConcurrentExecutions) != 4 {
			return fmt.Errorf("status %s, %d allocated", got.Status, aws.ToInt32(got.AllocatedProvisionedConcurrentExecutions))
		}
		return nil
	})
	// One at a time, every invocation through the alias runs on a provisioned
	// environment of the version it was routed to.
	seen := map[string]int{}
	for range 40 {
		v, env := checkRan(t, s, "pcw")
		if env["AWS_LAMBDA_INITIALIZATION_TYPE"] != "provisioned-concurrency" {
			t.Fatalf("version %s ran on a %v environment", v, env["AWS_LAMBDA_INITIALIZATION_TYPE"])
		}
		seen[v]++
	}
	if seen["1"] == 0 || seen["2"] == 0 {
		t.Errorf("versions %v: both should run", seen)
	}
	// Each version keeps two: three at once on one version run two provisioned and
	// one on-demand.
	for _, v := range []string{"1", "2"} {
		types3 := make(chan any, 3)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("pcw"), Qualifier: aws.String(v),
					Payload: []byte(`{"op":"env","ms":1000}`)})
				types3 <- decode(t, out.Payload)["AWS_LAMBDA_INITIALIZATION_TYPE"]
			})
		}
		wg.Wait()
		close(types3)
		counts := map[any]int{}
		for it := range types3 {
			counts[it]++
		}
		if counts["provisioned-concurrency"] != 2 || counts["on-demand"] != 1 {
			t.Errorf("version %s: environments used %v, want 2 provisioned and 1 on-demand", v, counts)
		}
	}
	// Moving all the weight to version 2 moves the provisioned environments there.
	if _, err := s.client.UpdateAlias(ctx(t), &lambda.UpdateAliasInput{FunctionName: aws.String("pcw"), Name: aws.String("live"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 1}}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, func() error {
		got, err := s.client.GetProvisionedConcurrencyConfig(ctx(t), &lambda.GetProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("pcw"), Qualifier: aws.String("live")})
		if err != nil {
			return err
		}
		if got.Status != types.ProvisionedConcurrencyStatusEnumReady {
			return fmt.Errorf("status %s", got.Status)
		}
		return nil
	})
	initTypes := make(chan string, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("pcw"), Qualifier: aws.String("2"),
				Payload: []byte(`{"op":"env","ms":1000}`)})
			initTypes <- fmt.Sprint(decode(t, out.Payload)["AWS_LAMBDA_INITIALIZATION_TYPE"])
		})
	}
	wg.Wait()
	close(initTypes)
	var all []string
	for it := range initTypes {
		all = append(all, it)
	}
	if strings.Count(strings.Join(all, ","), "provisioned-concurrency") != 4 {
		t.Errorf("version 2 with all the weight: %v, want 4 provisioned", all)
	}
}

var platformStartRE = regexp.MustCompile(`"type":"platform.start","record":\{[^}]*"version":"(\d+)"`)

// A weighted alias of a Managed Instances function splits its invocations between
// the environments of its two versions; ExecutedVersion, the function and its log
// agree on which ran. The function's package has no bootstrap: it comes from a
// layer, which each instance's agent unpacks at /opt.
func TestWeightedAliasManaged(t *testing.T) {
	s := managedShoal(t)
	cpArn := createCapacityProvider(t, s, "cpw")
	layer := publishLayer(t, s, "goruntime", goFnZip)
	_, err := s.client.CreateFunction(ctx(t), &lambda.CreateFunctionInput{
		FunctionName: aws.String("miw"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String(role),
		Code:       &types.FunctionCode{ZipFile: zipSources(map[string]string{"README": "the bootstrap is in a layer\n"})},
		MemorySize: aws.Int32(2048), Timeout: aws.Int32(30), Layers: []string{layer},
		CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
			CapacityProviderArn: aws.String(cpArn), PerExecutionEnvironmentMaxConcurrency: aws.Int32(4),
			ExecutionEnvironmentMemoryGiBPerVCpu: aws.Float64(2),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	publishTwo(t, s, "miw")
	waitVersionState(t, s, "miw", "1", types.StateActive)
	waitVersionState(t, s, "miw", "2", types.StateActive)
	weightedAlias(t, s, "miw", 0.3)

	const n = 300
	counts := map[string]int{}
	for i := range n {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("miw"), Qualifier: aws.String("live"),
			Payload: []byte(`{"op":"env"}`), LogType: types.LogTypeTail})
		executed := aws.ToString(out.ExecutedVersion)
		counts[executed]++
		if i >= 30 {
			continue
		}
		env := decode(t, out.Payload)
		tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		m := platformStartRE.FindSubmatch(tail)
		tags := map[string]string{"1": "one", "2": "two"}
		if env["AWS_LAMBDA_FUNCTION_VERSION"] != executed || env["TAG"] != tags[executed] ||
			env["AWS_LAMBDA_INITIALIZATION_TYPE"] != "lambda-managed-instances" || m == nil || string(m[1]) != executed {
			t.Fatalf("ExecutedVersion %s; the function says version %v, TAG %v, %v; its log %q", executed,
				env["AWS_LAMBDA_FUNCTION_VERSION"], env["TAG"], env["AWS_LAMBDA_INITIALIZATION_TYPE"], tail)
		}
	}
	share := float64(counts["2"]) / n
	t.Logf("%d invocations through an alias at 0.3: %v, %.1f %% on version 2", n, counts, 100*share)
	// 300 draws at p = 0.3: σ = 2.6 %; ± 10 % is 3.8 σ.
	if counts["1"]+counts["2"] != n || math.Abs(share-0.3) > 0.1 {
		t.Errorf("versions %v, want 30 %% ± 10 %% on version 2", counts)
	}
	// Each version ran on environments of its own.
	fv := getFleet(t, s)
	for _, v := range []string{"1", "2"} {
		if envs, _, _ := readyEnvs(fv, "miw", v); envs < 3 {
			t.Errorf("version %s has %d ready environments", v, envs)
		}
	}
}
