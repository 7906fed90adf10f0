package lambdaapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/asyncq"
)

func TestInvokeEvent(t *testing.T) {
	e := newEnv(t)
	e.create(t, "fn")
	ctx := context.Background()
	event := func(in *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		in.InvocationType = types.InvocationTypeEvent
		return e.client.Invoke(ctx, in)
	}
	t.Run("queued with the request id", func(t *testing.T) {
		resp, err := http.DefaultClient.Do(mustRequest(t, "POST", e.url+"/2015-03-31/functions/fn:$LATEST/invocations",
			map[string]string{"X-Amz-Invocation-Type": "Event"}, `{"k":"v"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		q := e.inv.queued()
		last := q[len(q)-1]
		if resp.StatusCode != 202 || resp.ContentLength != 0 || last.RequestID != resp.Header.Get("X-Amzn-Requestid") ||
			last.Qualifier != "$LATEST" || last.InvokedARN != "arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST" {
			t.Errorf("status %d, length %d, queued %+v", resp.StatusCode, resp.ContentLength, last)
		}
	})
	t.Run("an asynchronous payload is at most 1 MB", func(t *testing.T) {
		_, err := event(&lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`"` + strings.Repeat("x", asyncq.MaxEventBytes) + `"`)})
		tooLarge := wantErr[*types.RequestTooLargeException](t, err)
		if aws.ToString(tooLarge.Message) != "Request must be smaller than 1048576 bytes for the InvokeFunction operation" {
			t.Errorf("message %q", aws.ToString(tooLarge.Message))
		}
		if _, err := event(&lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`"` + strings.Repeat("x", asyncq.MaxEventBytes-2) + `"`)}); err != nil {
			t.Errorf("1 MB: %v", err)
		}
	})
	t.Run("the function must exist", func(t *testing.T) {
		_, err := event(&lambda.InvokeInput{FunctionName: aws.String("nope")})
		wantErr[*types.ResourceNotFoundException](t, err)
		_, err = event(&lambda.InvokeInput{FunctionName: aws.String("fn"), Qualifier: aws.String("9")})
		wantErr[*types.ResourceNotFoundException](t, err)
	})
	t.Run("the payload must be JSON", func(t *testing.T) {
		_, err := event(&lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{nope`)})
		wantErr[*types.InvalidRequestContentException](t, err)
	})
	t.Run("a queue that fails", func(t *testing.T) {
		e.inv.mu.Lock()
		e.inv.queueErr = errors.New("stream unavailable")
		e.inv.mu.Unlock()
		defer func() { e.inv.mu.Lock(); e.inv.queueErr = nil; e.inv.mu.Unlock() }()
		_, err := event(&lambda.InvokeInput{FunctionName: aws.String("fn")})
		wantErr[*types.ServiceException](t, err)
	})
	t.Run("InvokeAsync", func(t *testing.T) {
		n := len(e.inv.queued())
		//lint:ignore SA1019 InvokeAsync is deprecated, and clients still call it: shoal answers it as Lambda does.
		out, err := e.client.InvokeAsync(ctx, &lambda.InvokeAsyncInput{FunctionName: aws.String("fn"), InvokeArgs: strings.NewReader(`{"old":"api"}`)})
		if err != nil || out.Status != 202 {
			t.Fatalf("%+v, %v", out, err)
		}
		if q := e.inv.queued(); len(q) != n+1 || string(q[n].Payload) != `{"old":"api"}` {
			t.Errorf("queued %+v", q)
		}
	})
}

// An invoker without a queue refuses InvocationType Event.
func TestInvokeEventWithoutQueue(t *testing.T) {
	e := newEnv(t)
	e.create(t, "fn")
	srv := httptest.NewServer(New(Config{}, e.reg, syncOnly{e.inv}, nil))
	defer srv.Close()
	resp, err := http.DefaultClient.Do(mustRequest(t, "POST", srv.URL+"/2015-03-31/functions/fn/invocations",
		map[string]string{"X-Amz-Invocation-Type": "Event"}, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-Errortype") != "InvalidParameterValueException" {
		t.Errorf("status %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
}

type syncOnly struct{ inv *fakeInvoker }

func (s syncOnly) Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResult, error) {
	return s.inv.Invoke(ctx, req)
}

func mustRequest(t *testing.T, method, url string, header map[string]string, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req
}

// Destinations and dead-letter targets are Lambda functions and NATS subjects.
func TestAsyncTargets(t *testing.T) {
	e := newEnv(t)
	e.create(t, "fn")
	e.create(t, "other")
	ctx := context.Background()
	const account = "123456789012"
	put := func(onSuccess, onFailure string) error {
		_, err := e.client.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"),
			DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(onSuccess)},
				OnFailure: &types.OnFailure{Destination: aws.String(onFailure)}}})
		return err
	}
	subject := "arn:aws:nats:us-east-1:" + account + ":lambda.fn.results"
	if err := put(subject, "arn:aws:lambda:us-east-1:"+account+":function:other"); err != nil {
		t.Fatalf("a subject and a function: %v", err)
	}
	got, err := e.client.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("fn")})
	if err != nil || aws.ToString(got.DestinationConfig.OnSuccess.Destination) != subject {
		t.Fatalf("get: %+v, %v", got, err)
	}
	refusals := map[string]string{
		"arn:aws:sqs:us-east-1:" + account + ":q":                     "not to SQS, SNS, EventBridge or S3",
		"arn:aws:nats:us-east-1:" + account + ":orders.failed":        "is invalid",
		"arn:aws:nats:us-east-1:" + account + ":shoal.agent.i-1.cmd":  "is invalid",
		"arn:aws:nats:eu-west-1:" + account + ":lambda.x":             "is invalid",
		"arn:aws:lambda:us-east-1:" + account + ":function:nope":      "is invalid",
		"arn:aws:lambda:us-east-1:" + account + ":function:fn:prod":   "for itself",
		"arn:aws:dynamodb:us-east-1:" + account + ":table/t":          "The provided destination config",
		"arn:aws:lambda:us-east-1:" + account + ":function:other:777": "is invalid",
	}
	for arn, why := range refusals {
		err := put("", arn)
		if ipv := wantErr[*types.InvalidParameterValueException](t, err); !strings.Contains(aws.ToString(ipv.Message), why) {
			t.Errorf("%s: %q", arn, aws.ToString(ipv.Message))
		}
	}
	// The update merges the destinations it names.
	up, err := e.client.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(subject)}}})
	if err != nil || aws.ToString(up.DestinationConfig.OnSuccess.Destination) != subject || aws.ToString(up.DestinationConfig.OnFailure.Destination) != subject {
		t.Errorf("update: %+v, %v", up, err)
	}

	// DeadLetterConfig, at creation and update.
	in := createInput("dl", makeZip(t, map[string]string{"bootstrap": "dl"}))
	in.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String("arn:aws:sqs:us-east-1:" + account + ":dlq")}
	_, err = e.client.CreateFunction(ctx, in)
	wantErr[*types.InvalidParameterValueException](t, err)
	in.DeadLetterConfig.TargetArn = aws.String("arn:aws:nats:us-east-1:" + account + ":lambda.dl.dead")
	if _, err := e.client.CreateFunction(ctx, in); err != nil {
		t.Fatalf("a subject as dead-letter target: %v", err)
	}
	for arn, ok := range map[string]bool{
		"arn:aws:lambda:us-east-1:" + account + ":function:other": true,
		"arn:aws:lambda:us-east-1:" + account + ":function:dl":    false,
		"arn:aws:sns:us-east-1:" + account + ":topic":             false,
		"": true,
	} {
		_, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("dl"),
			DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String(arn)}})
		if ok && err != nil {
			t.Errorf("%q: %v", arn, err)
		}
		if !ok {
			wantErr[*types.InvalidParameterValueException](t, err)
		}
	}
}
