package test

import (
	"encoding/base64"
	"errors"
	"fmt"
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

// functionError invokes and expects an Unhandled function error of errorType.
func functionError(t *testing.T, s *shoal, name, payload, errorType string) map[string]any {
	t.Helper()
	out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(payload)})
	if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" {
		t.Fatalf("%s: status %d FunctionError %q payload %s", payload, out.StatusCode, aws.ToString(out.FunctionError), out.Payload)
	}
	m := decode(t, out.Payload)
	if m["errorType"] != errorType {
		t.Fatalf("%s: errorType %v, want %s (payload %s)", payload, m["errorType"], errorType, out.Payload)
	}
	return m
}

func TestFunctionFailures(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "fail", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })

	t.Run("handler error", func(t *testing.T) {
		m := functionError(t, s, "fail", `{"op":"error"}`, "errorString")
		if m["errorMessage"] != "something went wrong" {
			t.Fatalf("payload %v", m)
		}
	})

	t.Run("timeout replaces the environment", func(t *testing.T) {
		m := functionError(t, s, "fail", `{"op":"sleep","ms":3000}`, "Sandbox.Timedout")
		if msg, _ := m["errorMessage"].(string); !strings.Contains(msg, "Task timed out after 1.00 seconds") {
			t.Fatalf("message %q", msg)
		}
		// A fresh environment answers the next invocation.
		if got := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("fail"), Payload: []byte(`{"a":1}`)}); string(got.Payload) != `{"a":1}` {
			t.Fatalf("after timeout: %s", got.Payload)
		}
	})

	t.Run("crash", func(t *testing.T) {
		m := functionError(t, s, "fail", `{"op":"crash"}`, "Runtime.ExitError")
		if msg, _ := m["errorMessage"].(string); !strings.Contains(msg, "Runtime exited with error: exit status 1") {
			t.Fatalf("message %q", msg)
		}
		if got := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("fail"), Payload: []byte(`{"b":2}`)}); string(got.Payload) != `{"b":2}` {
			t.Fatalf("after crash: %s", got.Payload)
		}
	})

	t.Run("init error", func(t *testing.T) {
		createGoFn(t, s, "badinit", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"FAIL_INIT": "1"}}
		})
		functionError(t, s, "badinit", `{}`, "Runtime.ExitError")
	})

	t.Run("missing bootstrap", func(t *testing.T) {
		_, err := s.client.CreateFunction(ctx(t), &lambda.CreateFunctionInput{FunctionName: aws.String("nobootstrap"),
			Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String(role),
			Code: &types.FunctionCode{ZipFile: zipSources(map[string]string{"README": "no bootstrap here"})}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("nobootstrap"), Payload: []byte(`{}`), LogType: types.LogTypeTail})
		if aws.ToString(out.FunctionError) != "Unhandled" || decode(t, out.Payload)["errorType"] != "Runtime.InvalidEntrypoint" {
			t.Fatalf("FunctionError %q payload %s", aws.ToString(out.FunctionError), out.Payload)
		}
		// The failure leaves its trace: Lambda's INIT_REPORT in the tail and
		// in the function's log, and the invocation in the usage ledger.
		const report = "Phase: init\tStatus: error\tError Type: Runtime.InvalidEntrypoint"
		tail, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if err != nil || !strings.Contains(string(tail), report) {
			t.Errorf("tail %q (%v), want the INIT_REPORT", tail, err)
		}
		poll.Until(t, 20*time.Second, func() error {
			if log, _, _ := shoalCLI(t, s, "fn", "logs", "nobootstrap"); !strings.Contains(log, report) {
				return fmt.Errorf("shoal fn logs shows no INIT_REPORT:\n%s", log)
			}
			return nil
		})
		poll.Until(t, 30*time.Second, func() error {
			events, err := ledgerSince(s.http, s.endpoint, start)
			if err != nil {
				return err
			}
			for _, ev := range events {
				if ev.Function == "nobootstrap" && ev.Kind == meter.KindInvocation {
					if ev.Outcome != meter.OutcomeError || ev.ErrorType != "Runtime.InvalidEntrypoint" || ev.BilledMs < 1 {
						return fmt.Errorf("ledger event %+v", ev)
					}
					return nil
				}
			}
			return errors.New("the invocation is not in the usage ledger")
		})
	})
}

func TestOutOfMemory(t *testing.T) {
	if !memoryCgroup() {
		t.Skip("no memory cgroup on this machine: the memory limit cannot be enforced")
	}
	s := startShoal(t)
	// 128 MB buys 128/1769 of a vCPU, as on Lambda: faulting in that much memory takes
	// several seconds at that share, so the timeout leaves room for a slow machine.
	createGoFn(t, s, "oom", func(in *lambda.CreateFunctionInput) {
		in.MemorySize = aws.Int32(128)
		in.Timeout = aws.Int32(60)
	})
	functionError(t, s, "oom", `{"op":"oom","mb":512}`, "Runtime.OutOfMemory")
	if got := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("oom"), Payload: []byte(`{"c":3}`)}); string(got.Payload) != `{"c":3}` {
		t.Fatalf("after OOM: %s", got.Payload)
	}
}

func TestConcurrencyLimits(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "limited")
	if _, err := s.client.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String("limited"), ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.client.GetFunctionConcurrency(ctx(t), &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("limited")})
	if err != nil || aws.ToInt32(got.ReservedConcurrentExecutions) != 1 {
		t.Fatalf("GetFunctionConcurrency = %v, %v", got, err)
	}
	settings, err := s.client.GetAccountSettings(ctx(t), &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if settings.AccountLimit.ConcurrentExecutions != 1000 || aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions) != 999 {
		t.Fatalf("account limit %+v", settings.AccountLimit)
	}

	// One slow invocation holds the only unit; a second one is throttled at once.
	var wg sync.WaitGroup
	wg.Go(func() {
		invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("limited"), Payload: []byte(`{"op":"sleep","ms":2000}`)})
	})
	waitStarted(t, s, "limited", 1)
	_, err = s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("limited")})
	var tm *types.TooManyRequestsException
	if !isErrAs(err, &tm) || string(tm.Reason) != "ReservedFunctionConcurrentInvocationLimitExceeded" {
		t.Fatalf("second invocation: %v, want a ReservedFunctionConcurrentInvocationLimitExceeded throttle", err)
	}
	wg.Wait()

	// Reserved concurrency 0 throttles everything.
	if _, err := s.client.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String("limited"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("limited")}); !isErr[*types.TooManyRequestsException](err) {
		t.Fatalf("reserved 0: %v", err)
	}
	if _, err := s.client.DeleteFunctionConcurrency(ctx(t), &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("limited")}); err != nil {
		t.Fatal(err)
	}
	invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("limited")})

	// Reserving beyond what leaves 100 unreserved is refused.
	_, err = s.client.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String("limited"), ReservedConcurrentExecutions: aws.Int32(950)})
	if !isErr[*types.InvalidParameterValueException](err) {
		t.Fatalf("reserving 950: %v", err)
	}
}

func TestAccountConcurrencyLimit(t *testing.T) {
	s := startShoal(t, func(c *serverConfig) { c.AccountConcurrency = 2 })
	createGoFn(t, s, "acct")
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("acct"), Payload: []byte(`{"op":"sleep","ms":2000}`)})
		})
	}
	waitStarted(t, s, "acct", 2)
	_, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("acct")})
	var tm *types.TooManyRequestsException
	if !isErrAs(err, &tm) || string(tm.Reason) != "ConcurrentInvocationLimitExceeded" {
		t.Fatalf("third invocation: %v, want a ConcurrentInvocationLimitExceeded throttle", err)
	}
	wg.Wait()
}

// waitStarted waits until n invocations of function have started in an environment
// (their START lines are in the function's log).
func waitStarted(t *testing.T, s *shoal, function string, n int) {
	t.Helper()
	poll.Until(t, 20*time.Second, func() error {
		if got := strings.Count(readLogs(t, s, function), "START RequestId:"); got < n {
			return fmt.Errorf("%d of %d invocations started", got, n)
		}
		return nil
	})
}

func TestProvisionedConcurrency(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "pc")
	v, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("pc")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("pc"),
		Name: aws.String("live"), FunctionVersion: v.Version}); err != nil {
		t.Fatal(err)
	}
	_, err = s.client.PutProvisionedConcurrencyConfig(ctx(t), &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("pc"), Qualifier: aws.String("$LATEST"), ProvisionedConcurrentExecutions: aws.Int32(1)})
	if err == nil {
		t.Fatal("provisioned concurrency on $LATEST was accepted")
	}
	put, err := s.client.PutProvisionedConcurrencyConfig(ctx(t), &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("pc"), Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if put.Status != types.ProvisionedConcurrencyStatusEnumInProgress || aws.ToInt32(put.RequestedProvisionedConcurrentExecutions) != 2 {
		t.Fatalf("put = %+v", put)
	}
	poll.Until(t, 30*time.Second, func() error {
		got, err := s.client.GetProvisionedConcurrencyConfig(ctx(t), &lambda.GetProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("pc"), Qualifier: aws.String("live")})
		if err != nil {
			return err
		}
		if got.Status != types.ProvisionedConcurrencyStatusEnumReady || aws.ToInt32(got.AvailableProvisionedConcurrentExecutions) != 2 {
			return errUnexpected("status", got.Status)
		}
		return nil
	})
	// Invocations of the alias run on the provisioned environments: no cold start.
	out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("pc"), Qualifier: aws.String("live"),
		Payload: []byte(`{"op":"env"}`), LogType: types.LogTypeTail})
	if env := decode(t, out.Payload); env["AWS_LAMBDA_INITIALIZATION_TYPE"] != "provisioned-concurrency" {
		t.Fatalf("ran on a %v environment", env["AWS_LAMBDA_INITIALIZATION_TYPE"])
	}
	// Three at once: two run on the provisioned environments, one spills over to on-demand.
	initTypes := make(chan any, 3)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("pc"), Qualifier: aws.String("live"),
				Payload: []byte(`{"op":"env","ms":1000}`)})
			initTypes <- decode(t, out.Payload)["AWS_LAMBDA_INITIALIZATION_TYPE"]
		})
	}
	wg.Wait()
	close(initTypes)
	counts := map[any]int{}
	for it := range initTypes {
		counts[it]++
	}
	if counts["provisioned-concurrency"] != 2 || counts["on-demand"] != 1 {
		t.Fatalf("environments used: %v, want 2 provisioned and 1 on-demand", counts)
	}
	list, err := s.client.ListProvisionedConcurrencyConfigs(ctx(t), &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("pc")})
	if err != nil || len(list.ProvisionedConcurrencyConfigs) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	if _, err := s.client.DeleteProvisionedConcurrencyConfig(ctx(t), &lambda.DeleteProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("pc"), Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	_, err = s.client.GetProvisionedConcurrencyConfig(ctx(t), &lambda.GetProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("pc"), Qualifier: aws.String("live")})
	if !isErr[*types.ProvisionedConcurrencyConfigNotFoundException](err) {
		t.Fatalf("after delete: %v", err)
	}
}
