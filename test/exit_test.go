package test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/poll"
)

// panicRounds is how many times each test makes aws-lambda-go panic and
// invokes the function again at once.
const panicRounds = 50

// panicThenInvoke makes the function panic, then invokes it again right
// away, without the SDK's retries, so that every failure of the second
// invocation is seen. It returns the second invocation's failure, if any.
func panicThenInvoke(t *testing.T, s *shoal, name, qualifier string, round int) error {
	t.Helper()
	in := func(payload string) *lambda.InvokeInput {
		in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(payload)}
		if qualifier != "" {
			in.Qualifier = aws.String(qualifier)
		}
		return in
	}
	out, err := s.noRetry.Invoke(ctx(t), in(`{"op":"panic"}`))
	if err != nil {
		return fmt.Errorf("round %d: the panicking invocation: %v", round, err)
	}
	if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "handler panicked") {
		return fmt.Errorf("round %d: the panicking invocation answered %q %s", round, aws.ToString(out.FunctionError), out.Payload)
	}
	want := fmt.Sprintf(`{"round":%d}`, round)
	out, err = s.noRetry.Invoke(ctx(t), in(want))
	switch {
	case err != nil:
		return fmt.Errorf("round %d: the invocation after the panic: %v", round, err)
	case out.FunctionError != nil:
		return fmt.Errorf("round %d: the invocation after the panic failed: %s", round, out.Payload)
	case string(out.Payload) != want:
		return fmt.Errorf("round %d: the invocation after the panic answered %s", round, out.Payload)
	}
	return nil
}

// TestInvokeAfterPanic: aws-lambda-go ends its process after it reports a
// panic. On Lambda the next invocation runs in a fresh environment; in shoal
// an invocation is only given to a runtime that asked for one, so the next
// invocation, sent at once, must never fail — on demand and on Provisioned
// Concurrency.
func TestInvokeAfterPanic(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "panicky")
	var failures []string
	for round := range panicRounds {
		if err := panicThenInvoke(t, s, "panicky", "", round); err != nil {
			failures = append(failures, err.Error())
		}
	}

	// Provisioned Concurrency: the panic kills a provisioned environment.
	v, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("panicky")})
	if err != nil {
		t.Fatal(err)
	}
	ver := aws.ToString(v.Version)
	if _, err := s.client.PutProvisionedConcurrencyConfig(ctx(t), &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("panicky"), Qualifier: aws.String(ver), ProvisionedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, func() error {
		got, err := s.client.GetProvisionedConcurrencyConfig(ctx(t), &lambda.GetProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("panicky"), Qualifier: aws.String(ver)})
		if err != nil {
			return err
		}
		if got.Status != types.ProvisionedConcurrencyStatusEnumReady {
			return errUnexpected("provisioned concurrency status", got.Status)
		}
		return nil
	})
	for round := range panicRounds {
		if err := panicThenInvoke(t, s, "panicky", ver, round); err != nil {
			failures = append(failures, "provisioned: "+err.Error())
		}
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d invocations after a panic failed:\n%s", len(failures), 2*panicRounds, strings.Join(failures, "\n"))
	}
}

// TestManagedInvokeAfterPanic is the same on Managed Instances, where one
// environment serves several invocations at once: the panic happens on one
// slot while the function's other environments, and other slots, are busy.
// The invocations that were busy finish (aws-lambda-go lets its other
// workers answer before the process ends), and the invocation sent right
// after the panic runs on another environment.
func TestManagedInvokeAfterPanic(t *testing.T) {
	s := managedShoal(t)
	cpArn := createCapacityProvider(t, s, "cp-panic")
	createManagedFn(t, s, "mpanic", cpArn, 4)
	ver := publishBounded(t, s, "mpanic", 3)
	var failures []string
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err.Error())
		mu.Unlock()
	}
	for round := range panicRounds {
		// Wait until the environment the last panic ended is replaced, so
		// that each round starts with the full fleet.
		poll.Until(t, time.Minute, func() error {
			if envs, _, _ := readyEnvs(getFleet(t, s), "mpanic", ver); envs != 3 {
				return fmt.Errorf("%d ready environments, want 3", envs)
			}
			return nil
		})
		var busy sync.WaitGroup
		for i := range 3 {
			busy.Go(func() {
				out, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("mpanic"), Qualifier: aws.String(ver),
					Payload: []byte(`{"op":"sleep","ms":800}`)})
				switch {
				case err != nil:
					fail(fmt.Errorf("round %d: busy invocation %d: %v", round, i, err))
				case out.FunctionError != nil:
					fail(fmt.Errorf("round %d: busy invocation %d failed: %s", round, i, out.Payload))
				}
			})
		}
		poll.Until(t, 10*time.Second, func() error {
			if _, _, inFlight := readyEnvs(getFleet(t, s), "mpanic", ver); inFlight < 3 {
				return fmt.Errorf("%d invocations in flight, want 3", inFlight)
			}
			return nil
		})
		if err := panicThenInvoke(t, s, "mpanic", ver, round); err != nil {
			fail(err)
		}
		busy.Wait()
	}
	if len(failures) > 0 {
		t.Fatalf("%d invocations failed around a panic:\n%s", len(failures), strings.Join(failures, "\n"))
	}
}
