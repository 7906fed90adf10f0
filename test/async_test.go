package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/awscli"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/controlplane"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/poll"
)

// Asynchronous invocation end to end: InvocationType Event through the AWS
// SDK and the aws CLI, retries, maximum age, destinations and dead-letter
// targets (Lambda functions and NATS subjects), records compared field for
// field with those AWS sent (testdata/aws-recordings), metrics, metering,
// Managed Instances, and a SIGKILL of the control plane.

const account = "123456789012"

func subjectARN(subject string) string { return "arn:aws:nats:us-east-1:" + account + ":" + subject }
func functionARN(name string) string {
	return "arn:aws:lambda:us-east-1:" + account + ":function:" + name
}

// invokeEvent invokes name asynchronously and returns the invocation's
// request id, the x-amzn-RequestId of the 202.
func invokeEvent(t *testing.T, c *lambda.Client, name, payload string) string {
	t.Helper()
	out, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String(name), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("invoke %s: %v", name, err)
	}
	if out.StatusCode != 202 || len(out.Payload) != 0 {
		t.Fatalf("invoke %s: status %d, payload %q", name, out.StatusCode, out.Payload)
	}
	id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if !ok || id == "" {
		t.Fatal("the 202 has no request id")
	}
	return id
}

// recordReader reads what shoal keeps of the records and dead letters it sends
// to NATS subjects, as a user's NATS client does: connected to the bus with
// the key shoal writes in its data directory.
type recordReader struct {
	nc *nats.Conn
	st jetstream.Stream
}

func readRecords(t *testing.T, dataDir string) *recordReader {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join(dataDir, controlplane.DestinationKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := os.ReadFile(filepath.Join(dataDir, "nats.addr"))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := bus.Credentials{Identity: bus.DestinationReader, Seed: bytes.TrimSpace(seed)}.Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("nats://"+strings.TrimSpace(string(addr)), append(opts, nats.MaxReconnects(-1))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx(t), "SHOAL_DESTINATIONS")
	if err != nil {
		t.Fatal(err)
	}
	return &recordReader{nc: nc, st: st}
}

// on returns the messages kept on subject, oldest first.
func (r *recordReader) on(t *testing.T, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := r.st.GetMsg(ctx(t), seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatalf("reading %s: %v", subject, err)
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

// records decodes the records kept on subject, by request id.
func (r *recordReader) records(t *testing.T, subject string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, m := range r.on(t, subject) {
		var rec map[string]any
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			t.Fatalf("a record on %s is not JSON: %q", subject, m.Data)
		}
		rc, _ := rec["requestContext"].(map[string]any)
		id, _ := rc["requestId"].(string)
		if _, dup := out[id]; dup {
			t.Errorf("two records of event %s on %s", id, subject)
		}
		out[id] = rec
	}
	return out
}

// waitRecord waits for the record of event id on subject.
func (r *recordReader) waitRecord(t *testing.T, subject, id string, timeout time.Duration) map[string]any {
	t.Helper()
	var rec map[string]any
	poll.Until(t, timeout, func() error {
		rec = r.records(t, subject)[id]
		if rec == nil {
			return fmt.Errorf("no record of %s on %s", id, subject)
		}
		return nil
	})
	return rec
}

// recordedRecord is a record AWS sent to a destination, as LocalStack's
// test_lambda_destinations recorded it.
func recordedRecord(t *testing.T, test, step string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "testdata", "aws-recordings", "test_lambda_destinations.snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]struct {
		Content map[string]json.RawMessage `json:"recorded-content"`
	}
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	raw := all["tests/aws/services/lambda_/test_lambda_destinations.py::"+test].Content[step]
	var v struct {
		Messages []struct{ Body map[string]any }
		Body     map[string]any
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Messages) > 0 {
		return v.Messages[0].Body
	}
	if v.Body == nil {
		t.Fatalf("no record in %s %s", test, step)
	}
	return v.Body
}

var recordTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// checkRecord compares a record shoal sent with the one AWS sent in the same
// case, field for field: the same members at every level, Lambda's
// timestamp, the event's request id, the ARN of the version that ran, the
// same condition, count and response context, the payload the event had,
// and the function's own answer.
func checkRecord(t *testing.T, want, got map[string]any, requestID, function, payload string, answer func(any) error) {
	t.Helper()
	sameKeys := func(path string, w, g map[string]any) {
		t.Helper()
		var wk, gk []string
		for k := range w {
			wk = append(wk, k)
		}
		for k := range g {
			gk = append(gk, k)
		}
		sort.Strings(wk)
		sort.Strings(gk)
		if strings.Join(wk, ",") != strings.Join(gk, ",") {
			t.Errorf("%s: AWS has members %v, shoal %v", path, wk, gk)
		}
	}
	sameKeys("record", want, got)
	if got["version"] != want["version"] {
		t.Errorf("version %v, AWS %v", got["version"], want["version"])
	}
	if ts, _ := got["timestamp"].(string); !recordTimestamp.MatchString(ts) {
		t.Errorf("timestamp %q is not Lambda's form", ts)
	}
	wrc, _ := want["requestContext"].(map[string]any)
	grc, _ := got["requestContext"].(map[string]any)
	sameKeys("requestContext", wrc, grc)
	if grc["requestId"] != requestID {
		t.Errorf("requestId %v, the event's is %s", grc["requestId"], requestID)
	}
	if grc["functionArn"] != functionARN(function)+":$LATEST" {
		t.Errorf("functionArn %v", grc["functionArn"])
	}
	for _, k := range []string{"condition", "approximateInvokeCount"} {
		if grc[k] != wrc[k] {
			t.Errorf("requestContext.%s %v, AWS %v", k, grc[k], wrc[k])
		}
	}
	if wctx, ok := want["responseContext"].(map[string]any); ok {
		gctx, _ := got["responseContext"].(map[string]any)
		if fmt.Sprint(gctx) != fmt.Sprint(wctx) {
			t.Errorf("responseContext %v, AWS %v", gctx, wctx)
		}
	}
	sent, _ := json.Marshal(got["requestPayload"])
	if !jsonEqual(sent, []byte(payload)) {
		t.Errorf("requestPayload %s, the event was %s", sent, payload)
	}
	if answer != nil {
		if err := answer(got["responsePayload"]); err != nil {
			t.Errorf("responsePayload: %v", err)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// isGoError checks that an answer is aws-lambda-go's error for the gofn
// function's "error" op.
func isGoError(v any) error {
	m, _ := v.(map[string]any)
	if m["errorMessage"] != "something went wrong" || m["errorType"] == nil {
		return fmt.Errorf("%v is not the function's error", v)
	}
	return nil
}

// runsOf counts the runs of event id in the function's log.
func runsOf(t *testing.T, s *shoal, function, id string) int {
	t.Helper()
	return strings.Count(readLogs(t, s, function), "START RequestId: "+id)
}

// TestAsyncInvoke: InvocationType Event answers 202 at once with the
// invocation's request id; the function runs later with that id, and the
// invocation is metered like any other.
func TestAsyncInvoke(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "async-echo")
	id := invokeEvent(t, s.client, "async-echo", `{"op":"log","value":"queued-event-1"}`)
	poll.Until(t, 30*time.Second, func() error {
		if logs := readLogs(t, s, "async-echo"); !strings.Contains(logs, "hello from the function: queued-event-1") ||
			!strings.Contains(logs, "START RequestId: "+id) {
			return fmt.Errorf("the event has not run as %s; logs:\n%s", id, logs)
		}
		return nil
	})
	poll.Until(t, 30*time.Second, func() error {
		events, err := readUsage(s.http, s.endpoint, url.Values{"raw": {"true"}})
		if err != nil {
			return err
		}
		for _, ev := range events {
			if ev.Kind == meter.KindInvocation && ev.RequestID == id && ev.Function == "async-echo" && ev.BilledMs > 0 {
				return nil
			}
		}
		return fmt.Errorf("no usage event of %s among %d", id, len(events))
	})
}

// TestAsyncCLI: the aws CLI's invoke --invocation-type Event prints
// StatusCode 202 and leaves the output file empty; the event runs.
func TestAsyncCLI(t *testing.T) {
	bin := awscli.V2(t).Path
	s := startShoal(t)
	createGoFn(t, s, "cli-async")
	outFile := filepath.Join(t.TempDir(), "out.json")
	out, code := runAWS(t, bin, s, "lambda", "invoke", "--function-name", "cli-async", "--invocation-type", "Event",
		"--cli-binary-format", "raw-in-base64-out", "--payload", `{"op":"log","value":"from-the-cli"}`, outFile)
	if code != 0 {
		t.Fatalf("invoke exit %d: %s", code, out)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["StatusCode"] != float64(202) {
		t.Fatalf("invoke printed %s", out)
	}
	if b, err := os.ReadFile(outFile); err != nil || len(b) != 0 {
		t.Errorf("output file: %q, %v", b, err)
	}
	poll.Until(t, 30*time.Second, func() error {
		if !strings.Contains(readLogs(t, s, "cli-async"), "hello from the function: from-the-cli") {
			return errors.New("the event has not run")
		}
		return nil
	})
}

// TestAsyncDestinations: records of successes and of failures, dead letters,
// retries counted, NATS subjects and Lambda functions as targets, reserved
// concurrency 0, and Lambda's asynchronous metrics.
func TestAsyncDestinations(t *testing.T) {
	s := startShoal(t, func(c *serverConfig) { c.AsyncRetryDelay = 200 * time.Millisecond })
	rr := readRecords(t, s.dataDir)
	putConfig := func(in *lambda.PutFunctionEventInvokeConfigInput) {
		t.Helper()
		if _, err := s.client.PutFunctionEventInvokeConfig(ctx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	withDLQ := func(target string) func(*lambda.CreateFunctionInput) {
		return func(in *lambda.CreateFunctionInput) {
			in.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String(target)}
		}
	}
	createGoFn(t, s, "dst-ok")
	createGoFn(t, s, "dst-fail", withDLQ(subjectARN("lambda.dst.dead")))
	createGoFn(t, s, "dst-collector")
	createGoFn(t, s, "dst-dead-collector")
	// dst-chain fails in its init, whatever its event.
	createGoFn(t, s, "dst-chain", withDLQ(functionARN("dst-dead-collector")), func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"FAIL_INIT": "1"}}
	})
	createGoFn(t, s, "dst-zero")
	putConfig(&lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("dst-ok"), MaximumRetryAttempts: aws.Int32(0),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(subjectARN("lambda.dst.ok"))},
			OnFailure: &types.OnFailure{Destination: aws.String(subjectARN("lambda.dst.failed"))}}})
	putConfig(&lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("dst-fail"),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(subjectARN("lambda.dst.failed"))}}})
	putConfig(&lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("dst-chain"), MaximumRetryAttempts: aws.Int32(0),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(functionARN("dst-collector"))}}})
	for _, fn := range []string{"dst-collector", "dst-dead-collector"} {
		putConfig(&lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(fn),
			DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(subjectARN("lambda.dst.collected"))}}})
	}
	putConfig(&lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("dst-zero"),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(subjectARN("lambda.dst.failed"))}}})
	if _, err := s.client.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("dst-zero"),
		ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}

	okPayload, failPayload := `{"op":"echo","n":1}`, `{"op":"error"}`
	okID := invokeEvent(t, s.client, "dst-ok", okPayload)
	failID := invokeEvent(t, s.client, "dst-fail", failPayload)
	chainPayload := `{"op":"echo","chain":true}`
	chainID := invokeEvent(t, s.client, "dst-chain", chainPayload)
	zeroID := invokeEvent(t, s.client, "dst-zero", okPayload)

	t.Run("success", func(t *testing.T) {
		got := rr.waitRecord(t, "lambda.dst.ok", okID, time.Minute)
		want := recordedRecord(t, "TestLambdaDestinationSqs::test_assess_lambda_destination_invocation[payload0]", "receive_message_result")
		checkRecord(t, want, got, okID, "dst-ok", okPayload, func(v any) error {
			if b, _ := json.Marshal(v); !jsonEqual(b, []byte(okPayload)) {
				return fmt.Errorf("%s is not the function's answer", b)
			}
			return nil
		})
	})
	t.Run("retries exhausted", func(t *testing.T) {
		got := rr.waitRecord(t, "lambda.dst.failed", failID, time.Minute)
		want := recordedRecord(t, "TestLambdaDestinationSqs::test_retries", "queue_destination_payload")
		checkRecord(t, want, got, failID, "dst-fail", failPayload, isGoError)
		// Retries are counted: the function ran once and twice more.
		poll.Until(t, 30*time.Second, func() error {
			if n := runsOf(t, s, "dst-fail", failID); n != 3 {
				return fmt.Errorf("the event ran %d times, want 3", n)
			}
			return nil
		})
	})
	t.Run("dead letter on a subject", func(t *testing.T) {
		var dl []*jetstream.RawStreamMsg
		poll.Until(t, time.Minute, func() error {
			if dl = rr.on(t, "lambda.dst.dead"); len(dl) == 0 {
				return errors.New("no dead letter")
			}
			return nil
		})
		recorded := map[string]string{"RequestID": failID, "ErrorCode": "200", "ErrorMessage": "something went wrong"} // test_dead_letter_queue's attributes
		if len(dl) != 1 || !jsonEqual(dl[0].Data, []byte(failPayload)) {
			t.Fatalf("dead letters: %d, the first %q", len(dl), dl[0].Data)
		}
		for k, v := range recorded {
			if got := dl[0].Header.Get(k); got != v {
				t.Errorf("attribute %s: %q, want %q", k, got, v)
			}
		}
	})
	t.Run("a function as destination and dead-letter target", func(t *testing.T) {
		// dst-chain fails once (no retries): its record goes to dst-collector and
		// its event to dst-dead-collector, both invoked asynchronously; they
		// echo what they get, and their own success records show it.
		var viaRecord, viaDeadLetter map[string]any
		poll.Until(t, time.Minute, func() error {
			viaRecord, viaDeadLetter = nil, nil
			for _, rec := range rr.records(t, "lambda.dst.collected") {
				got, _ := rec["responsePayload"].(map[string]any)
				switch {
				case got["requestContext"] != nil:
					viaRecord = got
				case got["chain"] == true:
					viaDeadLetter = rec
				}
			}
			if viaRecord == nil || viaDeadLetter == nil {
				return errors.New("the collectors have not run")
			}
			return nil
		})
		want := recordedRecord(t, "TestLambdaDestinationSqs::test_assess_lambda_destination_invocation[payload1]", "receive_message_result")
		checkRecord(t, want, viaRecord, chainID, "dst-chain", chainPayload, func(v any) error {
			if m, _ := v.(map[string]any); m["errorType"] != "Runtime.ExitError" {
				return fmt.Errorf("%v is not the failed init's error", v)
			}
			return nil
		})
		if rc := viaDeadLetter["requestContext"].(map[string]any); rc["functionArn"] != functionARN("dst-dead-collector")+":$LATEST" {
			t.Errorf("the dead letter ran %v", rc["functionArn"])
		}
	})
	t.Run("reserved concurrency 0", func(t *testing.T) {
		got := rr.waitRecord(t, "lambda.dst.failed", zeroID, time.Minute)
		rc := got["requestContext"].(map[string]any)
		if rc["condition"] != "ZeroReservedConcurrency" || rc["approximateInvokeCount"] != float64(0) || got["responseContext"] != nil {
			t.Errorf("record %v", got)
		}
		if logs := readLogs(t, s, "dst-zero"); strings.Contains(logs, "START") {
			t.Errorf("the function ran: %s", logs)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		m := scrapeMetrics(t, s.metricsURL())
		for fn, want := range map[string]float64{"dst-ok": 1, "dst-fail": 1, "dst-chain": 1, "dst-collector": 1, "dst-dead-collector": 1, "dst-zero": 1} {
			if got := m.value("shoal_function_async_events_received_total", promLabels("function", fn)); got != want {
				t.Errorf("AsyncEventsReceived of %s: %v, want %v", fn, got, want)
			}
		}
		for fn, want := range map[string]float64{"dst-ok": 0, "dst-fail": 1, "dst-chain": 1, "dst-zero": 1} {
			if got := m.value("shoal_function_async_events_dropped_total", promLabels("function", fn)); got != want {
				t.Errorf("AsyncEventsDropped of %s: %v, want %v", fn, got, want)
			}
		}
		// dst-fail ran three times: three ages.
		if got := m.value("shoal_function_async_event_age_seconds", promLabels("function", "dst-fail")); got != 3 {
			t.Errorf("AsyncEventAge of dst-fail observed %v attempts, want 3", got)
		}
	})
}

// TestAsyncMaximumAge: with a 60-second maximum age, a failed event has no
// time for Lambda's first retry (a minute later) and goes to OnFailure at
// once with EventAgeExceeded, as AWS does (test_maxeventage).
func TestAsyncMaximumAge(t *testing.T) {
	s := startShoal(t) // Lambda's own retry delays
	rr := readRecords(t, s.dataDir)
	createGoFn(t, s, "aged")
	if _, err := s.client.PutFunctionEventInvokeConfig(ctx(t), &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("aged"),
		MaximumRetryAttempts: aws.Int32(2), MaximumEventAgeInSeconds: aws.Int32(60),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(subjectARN("lambda.aged.failed"))}}}); err != nil {
		t.Fatal(err)
	}
	payload := `{"op":"error"}`
	id := invokeEvent(t, s.client, "aged", payload)
	got := rr.waitRecord(t, "lambda.aged.failed", id, 30*time.Second)
	checkRecord(t, recordedRecord(t, "TestLambdaDestinationSqs::test_maxeventage", "no_retry_failure_message"), got, id, "aged", payload, isGoError)
	poll.Until(t, 30*time.Second, func() error {
		if n := runsOf(t, s, "aged", id); n != 1 {
			return fmt.Errorf("the event ran %d times, want once", n)
		}
		return nil
	})
}

// TestAsyncManagedInstances: on Managed Instances, events beyond the slots
// wait in the queue while every slot is busy, and all of them run; none
// fails.
func TestAsyncManagedInstances(t *testing.T) {
	s := managedShoal(t)
	rr := readRecords(t, s.dataDir)
	cpArn := createCapacityProvider(t, s, "cp-async")
	createManagedFn(t, s, "mi-async", cpArn, 1)
	ver := publishBounded(t, s, "mi-async", 3) // 3 slots, and no more
	if _, err := s.client.PutFunctionEventInvokeConfig(ctx(t), &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("mi-async"),
		Qualifier: aws.String(ver), MaximumRetryAttempts: aws.Int32(0),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(subjectARN("lambda.mi.ok"))},
			OnFailure: &types.OnFailure{Destination: aws.String(subjectARN("lambda.mi.failed"))}}}); err != nil {
		t.Fatal(err)
	}
	const events = 12
	ids := map[string]bool{}
	for range events {
		out, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("mi-async"), Qualifier: aws.String(ver),
			InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"op":"sleep","ms":500}`)})
		if err != nil || out.StatusCode != 202 {
			t.Fatalf("invoke: %v", err)
		}
		id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		ids[id] = true
	}
	poll.Until(t, 2*time.Minute, func() error {
		if n := len(rr.records(t, "lambda.mi.ok")); n < events {
			return fmt.Errorf("%d of %d events succeeded", n, events)
		}
		return nil
	})
	for id := range rr.records(t, "lambda.mi.ok") {
		if !ids[id] {
			t.Errorf("a record of an event not sent: %s", id)
		}
	}
	if failed := rr.records(t, "lambda.mi.failed"); len(failed) > 0 {
		t.Errorf("%d events failed", len(failed))
	}
	m := scrapeMetrics(t, s.metricsURL())
	if got := m.value("shoal_function_async_events_dropped_total", promLabels("function", "mi-async")); got != 0 {
		t.Errorf("AsyncEventsDropped %v", got)
	}
	// The slots were full: the queue met throttles and waited them out.
	if got := m.value("shoal_function_throttles_total", promLabels("function", "mi-async", "version", ver)); got == 0 {
		t.Error("no throttle: the events never found the slots full")
	}
}

// TestAsyncSurvivesKill: events accepted before a SIGKILL of the control
// plane all run after the restart, each exactly once when it succeeds: those
// that had succeeded do not run again, those cut off run again, those queued
// run.
func TestAsyncSurvivesKill(t *testing.T) {
	dataDir, addr, marks := t.TempDir(), freePort(t), t.TempDir()
	// Without isolation, the function leaves its traces in a directory of
	// the host (the gofn function's "mark" op).
	p := runShoalUp(t, dataDir, addr, "--isolate=false")
	s := &shoal{client: newClient(p.endpoint, p.keys.creds), endpoint: p.endpoint, dataDir: dataDir, keys: p.keys, http: p.keys.http}
	createGoFn(t, s, "durable", func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"MARK_DIR": marks}}
		in.Timeout = aws.Int32(120)
	})
	if _, err := s.client.PutFunctionEventInvokeConfig(ctx(t), &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("durable"),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(subjectARN("lambda.durable.ok"))}}}); err != nil {
		t.Fatal(err)
	}
	const inFlight = 3
	if _, err := s.client.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("durable"),
		ReservedConcurrentExecutions: aws.Int32(inFlight)}); err != nil {
		t.Fatal(err)
	}
	rr := readRecords(t, dataDir)
	lines := func(key, what string) int {
		b, _ := os.ReadFile(filepath.Join(marks, key+"."+what))
		return strings.Count(string(b), "\n")
	}

	// Events that succeed before the kill.
	ids := map[string]string{} // request id → key
	for i := range 10 {
		key := fmt.Sprintf("quick-%d", i)
		ids[invokeEvent(t, s.client, "durable", `{"op":"mark","key":"`+key+`"}`)] = key
	}
	poll.Until(t, time.Minute, func() error {
		if n := len(rr.records(t, "lambda.durable.ok")); n < 10 {
			return fmt.Errorf("%d of 10 quick events done", n)
		}
		return nil
	})
	// Events cut off by the kill, and events still queued.
	var waiting []string
	for i := range 8 {
		key := fmt.Sprintf("wait-%d", i)
		waiting = append(waiting, key)
		ids[invokeEvent(t, s.client, "durable", `{"op":"mark","key":"`+key+`","value":"wait"}`)] = key
	}
	poll.Until(t, time.Minute, func() error {
		started := 0
		for _, key := range waiting {
			started += lines(key, "start")
		}
		if started < inFlight {
			return fmt.Errorf("%d of %d events started", started, inFlight)
		}
		return nil
	})
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	cutOff := map[string]bool{}
	for _, key := range waiting {
		if lines(key, "start") > 0 {
			cutOff[key] = true
		}
		if lines(key, "done") > 0 {
			t.Fatalf("%s finished before the kill", key)
		}
	}
	if err := os.WriteFile(filepath.Join(marks, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	p2 := runShoalUp(t, dataDir, addr, "--isolate=false")
	defer p2.stop(t)
	rr = readRecords(t, dataDir)
	var done map[string]map[string]any
	poll.Until(t, 2*time.Minute, func() error {
		if done = rr.records(t, "lambda.durable.ok"); len(done) < len(ids) {
			return fmt.Errorf("%d of %d events done after the restart", len(done), len(ids))
		}
		return nil
	})
	for id, key := range ids {
		if done[id] == nil {
			t.Errorf("event %s (%s) has no record", id, key)
		}
		// Exactly once to the end; started again only if the kill cut it off.
		wantStarts := 1
		if cutOff[key] {
			wantStarts = 2
		}
		if s, d := lines(key, "start"), lines(key, "done"); d != 1 || s != wantStarts {
			t.Errorf("%s: started %d times, finished %d times; want %d and 1", key, s, d, wantStarts)
		}
	}
	if len(cutOff) != inFlight {
		t.Errorf("%d events were cut off by the kill, want %d", len(cutOff), inFlight)
	}
}
