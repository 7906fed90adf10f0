package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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
// The crash of a runtime process fails every invocation in flight in its
// environment, as on Lambda: a busy invocation that the runtime had taken
// may end with Runtime.ExitError (aws-lambda-go lets a worker that is
// running a handler finish, but one that was just being handed an
// invocation drops it), and only one of that environment. Busy invocations
// of the other environments finish, and the invocation sent right after
// the panic runs on another environment.
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
	ended := 0 // busy invocations that the crash of their environment ended
	// How long a busy invocation sleeps: long enough for the three to be
	// seen in flight at once. A round in which one returned before that
	// (a loaded machine) tests nothing: it is run again, with longer sleeps.
	sleepMS, voids := 800, 0
	for round := 0; round < panicRounds; round++ {
		// Wait until the environment the last panic ended is replaced and
		// nothing is in flight, so that each round starts with the full
		// fleet, idle.
		poll.Until(t, time.Minute, func() error {
			envs, _, inFlight := readyEnvs(getFleet(t, s), "mpanic", ver)
			if envs != 3 || inFlight != 0 {
				return fmt.Errorf("%d ready environments with %d invocations in flight, want 3 idle", envs, inFlight)
			}
			return nil
		})
		var busy sync.WaitGroup
		var exitErrors atomic.Int32
		var returned atomic.Int32 // busy invocations that have returned
		for i := range 3 {
			busy.Go(func() {
				defer returned.Add(1)
				out, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("mpanic"), Qualifier: aws.String(ver),
					Payload: []byte(fmt.Sprintf(`{"op":"sleep","ms":%d}`, sleepMS))})
				switch {
				case err != nil:
					fail(fmt.Errorf("round %d: busy invocation %d: %v", round, i, err))
				case out.FunctionError == nil:
					if string(out.Payload) != fmt.Sprintf(`{"slept_ms":%d}`, sleepMS) {
						fail(fmt.Errorf("round %d: busy invocation %d answered %s", round, i, out.Payload))
					}
				case aws.ToString(out.FunctionError) == "Unhandled" && errorTypeOf(out.Payload) == "Runtime.ExitError":
					exitErrors.Add(1)
				default:
					fail(fmt.Errorf("round %d: busy invocation %d failed: %s", round, i, out.Payload))
				}
			})
		}
		// Where the busy invocations run when the panic is sent.
		var before map[string]int
		poll.Until(t, 10*time.Second, func() error {
			if returned.Load() > 0 {
				return nil // too late to see them all in flight: the round is void
			}
			v := getFleet(t, s)
			if _, _, inFlight := readyEnvs(v, "mpanic", ver); inFlight < 3 {
				mu.Lock()
				defer mu.Unlock()
				return fmt.Errorf("round %d: %d invocations in flight, want 3 (failures so far: %q)", round, inFlight, failures)
			}
			before = inFlightByEnv(v, "mpanic", ver)
			return nil
		})
		if before == nil {
			busy.Wait()
			if voids++; voids > panicRounds {
				t.Fatalf("in %d rounds the three busy invocations were never seen in flight at once (sleeping up to %d ms)", voids, sleepMS)
			}
			sleepMS = min(2*sleepMS, 6400)
			round--
			continue
		}
		if err := panicThenInvoke(t, s, "mpanic", ver, round); err != nil {
			fail(err)
		}
		busy.Wait()
		// The panic ended one environment: the one that is no longer ready
		// once the fleet is whole again.
		var crashed []string
		poll.Until(t, time.Minute, func() error {
			after := inFlightByEnv(getFleet(t, s), "mpanic", ver)
			crashed = crashed[:0]
			for id := range before {
				if _, ok := after[id]; !ok {
					crashed = append(crashed, id)
				}
			}
			if len(after) != 3 || len(crashed) != 1 {
				return fmt.Errorf("%d ready environments, %d of the %d before the panic gone; want 3 and 1", len(after), len(crashed), len(before))
			}
			return nil
		})
		if n := int(exitErrors.Load()); n > before[crashed[0]] {
			fail(fmt.Errorf("round %d: %d busy invocations ended with Runtime.ExitError, but the environment that crashed ran %d of them (in flight by environment: %v)",
				round, n, before[crashed[0]], before))
		}
		ended += int(exitErrors.Load())
	}
	t.Logf("%d of %d busy invocations ended with the crash of their environment (%d rounds run again, the busy invocations sleeping %d ms at the end)",
		ended, 3*panicRounds, voids, sleepMS)
	if len(failures) > 0 {
		t.Fatalf("%d invocations failed around a panic:\n%s", len(failures), strings.Join(failures, "\n"))
	}
}

// inFlightByEnv maps each ready environment of function:version to its
// invocations in flight.
func inFlightByEnv(v fleetView, function, version string) map[string]int {
	out := map[string]int{}
	for _, in := range v.Instances {
		if in.State != "running" {
			continue
		}
		for _, e := range in.Environments {
			if e.Function == function && e.Version == version && e.State == "ready" {
				out[e.ID] = e.InFlight
			}
		}
	}
	return out
}

// errorTypeOf reads errorType from a function error's payload.
func errorTypeOf(payload []byte) string {
	var e struct {
		ErrorType string `json:"errorType"`
	}
	_ = json.Unmarshal(payload, &e)
	return e.ErrorType
}
