package lambdaapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/awserr"
)

func TestInvoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "fn")
	if _, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:lambda:us-east-1:123456789012:function:fn"

	t.Run("request response", func(t *testing.T) {
		cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))
		out, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{"hello":"world"}`),
			LogType: types.LogTypeTail, ClientContext: aws.String(cc)})
		if err != nil {
			t.Fatal(err)
		}
		if out.StatusCode != 200 || string(out.Payload) != `{"hello":"world"}` || aws.ToString(out.ExecutedVersion) != "$LATEST" || out.FunctionError != nil {
			t.Errorf("invoke output %+v", out)
		}
		if tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult)); string(tail) != "tail of log" {
			t.Errorf("LogResult = %q", aws.ToString(out.LogResult))
		}
		req := e.inv.last()
		if req.ClientContext != `{"custom":{"k":"v"}}` || !req.TailLog || req.InvokedARN != arn || req.Qualifier != "" || req.RequestID == "" || req.Version.Version != "$LATEST" {
			t.Errorf("invoker got %+v", req)
		}
	})
	t.Run("qualifiers", func(t *testing.T) {
		for _, tc := range []struct {
			name, fn, q, wantVersion, wantARN string
		}{
			{"alias query", "fn", "live", "1", arn + ":live"},
			{"version in arn", arn + ":1", "", "1", arn + ":1"},
			{"partial arn", "123456789012:function:fn", "", "$LATEST", arn},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := &lambda.InvokeInput{FunctionName: aws.String(tc.fn)}
				if tc.q != "" {
					in.Qualifier = aws.String(tc.q)
				}
				out, err := e.client.Invoke(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.ExecutedVersion) != tc.wantVersion || e.inv.last().InvokedARN != tc.wantARN {
					t.Errorf("executed %s invoked %s", aws.ToString(out.ExecutedVersion), e.inv.last().InvokedARN)
				}
				if string(e.inv.last().Payload) != "{}" {
					t.Errorf("empty payload sent as %q, want {}", e.inv.last().Payload)
				}
			})
		}
		_, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(arn + ":1"), Qualifier: aws.String("live")})
		invalidParam(t, err)
		_, err = e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("doesnotexist")})
		if e := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(e.Message) != "Function not found: arn:aws:lambda:us-east-1:123456789012:function:doesnotexist:$LATEST" {
			t.Errorf("message %q", aws.ToString(e.Message))
		}
		_, err = e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), Qualifier: aws.String("7")})
		notFound(t, err)
		_, err = e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:123400000000@function:myfn")})
		validation(t, err)
	})
	t.Run("dry run", func(t *testing.T) {
		n := len(e.inv.reqs)
		out, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), InvocationType: types.InvocationTypeDryRun})
		if err != nil || out.StatusCode != 204 {
			t.Fatalf("dry run %+v %v", out, err)
		}
		if len(e.inv.reqs) != n {
			t.Error("dry run reached the invoker")
		}
	})
	t.Run("event", func(t *testing.T) {
		n := len(e.inv.reqs)
		out, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(`{"a":1}`), LogType: types.LogTypeTail})
		if err != nil || out.StatusCode != 202 || len(out.Payload) != 0 || out.ExecutedVersion != nil || out.LogResult != nil {
			t.Fatalf("event: %+v, %v", out, err)
		}
		if len(e.inv.reqs) != n {
			t.Error("an event ran at once")
		}
		q := e.inv.queued()
		if len(q) == 0 || string(q[len(q)-1].Payload) != `{"a":1}` || q[len(q)-1].Version.FunctionName != "fn" {
			t.Fatalf("queued: %+v", q)
		}
	})
	t.Run("bad client context", func(t *testing.T) {
		_, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), ClientContext: aws.String("string")})
		if e := wantErr[*types.InvalidRequestContentException](t, err); aws.ToString(e.Message) != "Client context must be a valid Base64-encoded JSON object." {
			t.Errorf("message %q", aws.ToString(e.Message))
		}
	})
	t.Run("invalid json payload", func(t *testing.T) {
		_, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte("n\x87r")})
		if e := wantErr[*types.InvalidRequestContentException](t, err); !strings.HasPrefix(aws.ToString(e.Message), "Could not parse request body into json: Could not parse payload into json: ") {
			t.Errorf("message %q", aws.ToString(e.Message))
		}
	})
	t.Run("request too large", func(t *testing.T) {
		big := []byte(`"` + strings.Repeat("a", 6291456) + `"`)
		_, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: big})
		if e := wantErr[*types.RequestTooLargeException](t, err); aws.ToString(e.Message) != "Request must be smaller than 6291456 bytes for the InvokeFunction operation" {
			t.Errorf("message %q", aws.ToString(e.Message))
		}
		exact := []byte(`"` + strings.Repeat("a", 6291454) + `"`)
		if _, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: exact}); err != nil {
			t.Fatalf("a payload of exactly 6291456 bytes: %v", err)
		}
	})
	t.Run("response too large", func(t *testing.T) {
		e.inv.mu.Lock()
		e.inv.respond = func(req *InvokeRequest) (*InvokeResult, error) {
			return &InvokeResult{Payload: []byte(`"` + strings.Repeat("b", 6291556) + `"`), ExecutedVersion: "$LATEST"}, nil
		}
		e.inv.mu.Unlock()
		defer func() { e.inv.mu.Lock(); e.inv.respond = nil; e.inv.mu.Unlock() }()
		out, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.FunctionError) != "Unhandled" ||
			string(out.Payload) != `{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}` {
			t.Errorf("oversized response gave %s %.200s", aws.ToString(out.FunctionError), out.Payload)
		}
	})
	t.Run("function error", func(t *testing.T) {
		e.inv.mu.Lock()
		e.inv.respond = func(req *InvokeRequest) (*InvokeResult, error) {
			return &InvokeResult{Payload: []byte(`{"errorMessage":"boom","errorType":"Error"}`), FunctionError: "Unhandled", ExecutedVersion: "1"}, nil
		}
		e.inv.mu.Unlock()
		defer func() { e.inv.mu.Lock(); e.inv.respond = nil; e.inv.mu.Unlock() }()
		out, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), Qualifier: aws.String("1")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.FunctionError) != "Unhandled" || aws.ToString(out.ExecutedVersion) != "1" || out.StatusCode != 200 {
			t.Errorf("function error output %+v", out)
		}
	})
	t.Run("throttle", func(t *testing.T) {
		e.inv.mu.Lock()
		e.inv.respond = func(req *InvokeRequest) (*InvokeResult, error) {
			return nil, awserr.Throttled(awserr.ReasonReservedFunctionConcurrentInvocationLimitExceeded, "Rate Exceeded.")
		}
		e.inv.mu.Unlock()
		defer func() { e.inv.mu.Lock(); e.inv.respond = nil; e.inv.mu.Unlock() }()
		_, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn")})
		th := wantErr[*types.TooManyRequestsException](t, err)
		if aws.ToString(th.Message) != "Rate Exceeded." || th.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded ||
			aws.ToString(th.RetryAfterSeconds) != "1" {
			t.Errorf("throttle %+v reason %s retry %s", th, th.Reason, aws.ToString(th.RetryAfterSeconds))
		}
	})
}

// rawResponse is what the handler sent for a request made without an SDK.
func rawDo(t *testing.T, method, url string, body io.Reader, header map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp, m
}

// Unsigned requests (as curl sends them) work, every response has a request id, and
// unknown routes answer UnknownOperationException.
func TestRawHTTP(t *testing.T) {
	e := newEnv(t)
	e.create(t, "fn")
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		errType                  string
	}{
		{"unsigned invoke", "POST", "/2015-03-31/functions/fn/invocations", `{"a":1}`, 200, ""},
		{"encoded arn", "POST", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Afn/invocations", `{}`, 200, ""},
		{"list with slash", "GET", "/2015-03-31/functions/", "", 200, ""},
		{"account settings with slash", "GET", "/2016-08-19/account-settings/", "", 200, ""},
		{"unknown route", "GET", "/2015-03-31/nothing", "", 404, "UnknownOperationException"},
		{"not found", "GET", "/2015-03-31/functions/nope", "", 404, "ResourceNotFoundException"},
		{"bad json", "POST", "/2015-03-31/functions", "{", 400, "InvalidRequestContentException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawDo(t, tc.method, e.url+tc.path, strings.NewReader(tc.body), nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tc.status, body)
			}
			if resp.Header.Get("X-Amzn-RequestId") == "" {
				t.Error("no x-amzn-RequestId")
			}
			if got := resp.Header.Get("X-Amzn-ErrorType"); got != tc.errType {
				t.Errorf("X-Amzn-ErrorType = %q, want %q", got, tc.errType)
			}
		})
	}
}

func TestWrongMethodIsUnknownOperation(t *testing.T) {
	e := newEnv(t)
	resp, _ := rawDo(t, "PATCH", e.url+"/2015-03-31/functions/fn", nil, nil)
	if resp.StatusCode != 404 || resp.Header.Get("X-Amzn-ErrorType") != "UnknownOperationException" {
		t.Fatalf("PATCH: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}
