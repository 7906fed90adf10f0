package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// managedFn is the function a Managed Instances benchmark deploys.
type managedFn struct {
	runtime types.Runtime
	handler string
	zip     func(b *testing.B) []byte
}

// goFn is the aws-lambda-go test function (test/testdata/gofn).
var goFn = managedFn{runtime: types.RuntimeProvidedal2023, handler: "bootstrap",
	zip: func(b *testing.B) []byte { return zipFile(b, filepath.Join(binaries(b), "bootstrap")) }}

// nodeFn is a Node.js handler that echoes its event, after sleeping "ms"
// milliseconds when the event's "op" is "sleep".
var nodeFn = managedFn{runtime: types.RuntimeNodejs22x, handler: "index.handler",
	zip: func(b *testing.B) []byte {
		return zipSource(b, "index.js", `exports.handler = async (e) => {
  if (e.op === "sleep") await new Promise((r) => setTimeout(r, e.ms));
  return e;
};
`)
	}}

// startManaged runs `shoal up` and deploys fn on a Managed Instances capacity
// provider: one environment (min = max = 1) of 2048 MB (1 vCPU) serving n
// invocations at once, in its own agent process. It returns the invoke URL
// and the processes on the path: the front (`shoal up`), the agent and the
// function.
func startManaged(b *testing.B, n int32, fn managedFn) (string, []watched) {
	b.Helper()
	endpoint, front, client := shoalUp(b)
	url := deployManaged(b, endpoint, client, n, fn)
	procs := []watched{{name: "front", pids: []int{front}}}
	return url, append(procs, agentOf(front)...)
}

// deployManaged deploys fn as "echo" on a new Managed Instances capacity
// provider of the shoal at endpoint: one environment (min = max = 1) of
// 2048 MB (1 vCPU) serving n invocations at once. It returns the invoke URL
// of the published version once that version is Active.
func deployManaged(b *testing.B, endpoint string, client *lambda.Client, n int32, fn managedFn) string {
	b.Helper()
	version := createManaged(b, client, n, 1, fn)
	waitActive(b, client, "echo", version, 2*time.Minute)
	return endpoint + "/2015-03-31/functions/echo/invocations?Qualifier=" + version
}

// createManaged is deployManaged with envs environments (min = max), which
// does not wait for them: it returns the published version.
func createManaged(b *testing.B, client *lambda.Client, n, envs int32, fn managedFn) string {
	b.Helper()
	ctx := context.Background()
	cp, err := client.CreateCapacityProvider(ctx, &lambda.CreateCapacityProviderInput{
		CapacityProviderName: aws.String("bench"),
		VpcConfig:            &types.CapacityProviderVpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}},
		PermissionsConfig:    &types.CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: aws.String("arn:aws:iam::123456789012:role/op")},
	})
	if err != nil {
		b.Fatal(err)
	}
	_, err = client.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("echo"), Runtime: fn.runtime, Handler: aws.String(fn.handler),
		Role: aws.String("arn:aws:iam::123456789012:role/bench"), Code: &types.FunctionCode{ZipFile: fn.zip(b)},
		MemorySize: aws.Int32(2048), Timeout: aws.Int32(30), Environment: fnEnv(),
		CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
			CapacityProviderArn: cp.CapacityProvider.CapacityProviderArn, PerExecutionEnvironmentMaxConcurrency: aws.Int32(n),
			ExecutionEnvironmentMemoryGiBPerVCpu: aws.Float64(2)}},
	})
	if err != nil {
		b.Fatal(err)
	}
	v, err := client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("echo")})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: aws.String("echo"),
		Qualifier: v.Version, FunctionScalingConfig: &types.FunctionScalingConfig{
			MinExecutionEnvironments: aws.Int32(envs), MaxExecutionEnvironments: aws.Int32(envs)}}); err != nil {
		b.Fatal(err)
	}
	return aws.ToString(v.Version)
}

// waitActive waits until the version of function is Active.
func waitActive(b *testing.B, client *lambda.Client, function, version string, within time.Duration) {
	b.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := client.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{
			FunctionName: aws.String(function), Qualifier: aws.String(version)})
		if err == nil && got.State == types.StateActive {
			return
		}
		if time.Now().After(deadline) {
			state := types.State("")
			if got != nil {
				state = got.State
			}
			b.Fatalf("%s:%s did not become active (%s): %v", function, version, state, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentOf returns the agent, among the children of parent (a `shoal up` or
// `shoal host`), that runs an environment, and that environment's function
// processes.
func agentOf(parent int) []watched {
	for _, pid := range children(parent) {
		args, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if fn := descendants(pid); strings.Contains(string(args), "\x00agent\x00") && len(fn) > 0 {
			return []watched{{name: "agent", pids: []int{pid}}, {name: "function", pids: fn}}
		}
	}
	return nil
}

// BenchmarkManagedIOBound: a handler that sleeps 100 ms, on one environment with
// N = 64, driven by 64 clients. Little's law bounds it at 64 / 0.1 s = 640/s.
// Beside it, the plain net/http server sleeping the same 100 ms shows what this
// machine's timers and wake-ups leave of that bound without any platform. The
// handler runs twice: as the aws-lambda-go function (whose Runtime API client
// keeps two idle connections, so at N = 64 it dials for most invocations) and
// as a Node.js handler (N = 64 is Lambda's default for Node.js on one vCPU).
// The Runtime Interface Emulator in its Managed Instances mode runs the same
// aws-lambda-go function at N = 64 (SHOAL_BENCH_RIE, as for
// BenchmarkManagedWarmInvoke).
//
// Run it with -benchtime 20s: a run is about 14,600 invocations, 23 per client,
// so the start (every client sends at once) and the drain (clients run out of
// requests one by one) weigh on the whole-run rate a fifth as much as in a 4 s
// run.
func BenchmarkManagedIOBound(b *testing.B) {
	sleep := []byte(`{"op":"sleep","ms":100}`)
	b.Run("plain-net-http/c=64", func(b *testing.B) {
		url, server := startEcho(b)
		load(b, url, 64, sleep, server)
	})
	b.Run("shoal-managed-instances/c=64", func(b *testing.B) {
		url, procs := startManaged(b, 64, goFn)
		load(b, url, 64, sleep, procs...)
	})
	b.Run("shoal-managed-instances-node/c=64", func(b *testing.B) {
		url, procs := startManaged(b, 64, nodeFn)
		load(b, url, 64, sleep, procs...)
	})
	b.Run("rie-lmi/c=64", func(b *testing.B) {
		load(b, startRIE(b, 64), 64, sleep)
	})
	// The same, with the clients' first requests spread over 100 ms rather than
	// sent at once, so that they do not move in convoys (see loadFrom).
	b.Run("plain-net-http/c=64-spread", func(b *testing.B) {
		url, server := startEcho(b)
		loadFrom(b, url, 64, sleep, 100*time.Millisecond, server)
	})
	b.Run("shoal-managed-instances/c=64-spread", func(b *testing.B) {
		url, procs := startManaged(b, 64, goFn)
		loadFrom(b, url, 64, sleep, 100*time.Millisecond, procs...)
	})
	b.Run("rie-lmi/c=64-spread", func(b *testing.B) {
		loadFrom(b, startRIE(b, 64), 64, sleep, 100*time.Millisecond)
	})
}

// BenchmarkManagedWarmInvoke compares a warm invoke of the no-op aws-lambda-go
// echo function on Managed Instances (one environment with N = 8 in its own agent
// process, reached over the multiplexed connection) with a plain Go net/http echo
// server and with the AWS Lambda Runtime Interface Emulator, at 1 and 8 clients,
// in one run. The emulator comes from
// `go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d`;
// point SHOAL_BENCH_RIE at the binary (its sub-benchmarks skip without it).
func BenchmarkManagedWarmInvoke(b *testing.B) {
	for _, c := range []int{1, 8} {
		b.Run(fmt.Sprintf("plain-net-http/c=%d", c), func(b *testing.B) {
			url, server := startEcho(b)
			load(b, url, c, echoBody, server)
		})
		b.Run(fmt.Sprintf("shoal-managed-instances/c=%d", c), func(b *testing.B) {
			url, procs := startManaged(b, 8, goFn)
			load(b, url, c, echoBody, procs...)
		})
		b.Run(fmt.Sprintf("rie-lmi/c=%d", c), func(b *testing.B) {
			load(b, startRIE(b, 8), c, echoBody)
		})
		if c == 1 { // the classic emulator crashes on concurrent invokes
			b.Run("rie-classic/c=1", func(b *testing.B) {
				load(b, startRIE(b, 0), c, echoBody)
			})
		}
	}
}

// startRIE runs the Runtime Interface Emulator with the test function and returns
// its invoke URL. With n > 0 it runs in Managed Instances mode
// (AWS_LAMBDA_MAX_CONCURRENCY=n), where it insists on /var/task/bootstrap, so it
// runs in a private mount namespace with the function bound there. There the
// function runs with GOMAXPROCS=1, as in a shoal environment of one vCPU (the
// emulator sets no CPU limit of its own).
func startRIE(b *testing.B, n int) string {
	b.Helper()
	rie := os.Getenv("SHOAL_BENCH_RIE")
	if rie == "" {
		b.Skip("SHOAL_BENCH_RIE is not set: no Runtime Interface Emulator to compare with")
	}
	refusing.Store(b, true)
	b.Cleanup(func() { refusing.Delete(b) })
	dir := binaries(b)
	addr, apiAddr := freeAddr(b), freeAddr(b)
	if n == 0 {
		startProcess(b, addr, nil, rie, "--runtime-interface-emulator-address", addr,
			"--runtime-api-address", apiAddr, "--log-level", "error", filepath.Join(dir, "bootstrap"))
		return "http://" + addr + "/2015-03-31/functions/function/invocations"
	}
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		b.Skip("the emulator's Managed Instances mode needs root and unshare for its /var/task")
	}
	task := b.TempDir()
	data, err := os.ReadFile(filepath.Join(dir, "bootstrap"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(task, "function"), data, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(task, "bootstrap"), []byte("#!/bin/sh\nGOMAXPROCS=1 exec /var/task/function\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	script := fmt.Sprintf(`mount -t tmpfs tmpfs /var && mkdir -p /var/task /var/runtime && mount --bind %s /var/task && cd /var/task && exec env AWS_LAMBDA_MAX_CONCURRENCY=%d %s --runtime-interface-emulator-address %s --runtime-api-address %s --log-level error`,
		task, n, rie, addr, apiAddr)
	startProcess(b, addr, nil, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	return "http://" + addr + "/2015-03-31/functions/function/invocations"
}

// fnEnv is the deployed function's environment (SHOAL_BENCH_FN_ENV,
// space-separated KEY=VALUE pairs), to compare settings such as GOMAXPROCS.
func fnEnv() *types.Environment {
	vars := map[string]string{}
	for _, kv := range strings.Fields(os.Getenv("SHOAL_BENCH_FN_ENV")) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return &types.Environment{Variables: vars}
}
