package lambdaapi

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// streamEvents reads every event of an InvokeWithResponseStream answer.
func streamEvents(t *testing.T, out *lambda.InvokeWithResponseStreamOutput) (chunks []string, complete *types.InvokeWithResponseStreamCompleteEvent) {
	t.Helper()
	stream := out.GetStream()
	defer stream.Close()
	for ev := range stream.Events() {
		switch v := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			chunks = append(chunks, string(v.Value.Payload))
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			c := v.Value
			complete = &c
		default:
			t.Errorf("unexpected event %T", ev)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return chunks, complete
}

func TestInvokeWithResponseStream(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "fn")

	t.Run("streamed", func(t *testing.T) {
		e.inv.respond = func(req *InvokeRequest) (*InvokeResult, error) {
			req.Stream.Start("text/plain")
			for _, p := range []string{"one ", "two ", "three"} {
				if _, err := req.Stream.Write([]byte(p)); err != nil {
					return nil, err
				}
			}
			return &InvokeResult{Streamed: true, ContentType: "text/plain", ExecutedVersion: "$LATEST", LogTail: []byte("tail")}, nil
		}
		out, err := e.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fn"),
			Payload: []byte(`{"a":1}`), LogType: types.LogTypeTail})
		if err != nil {
			t.Fatal(err)
		}
		if out.StatusCode != 200 || aws.ToString(out.ExecutedVersion) != "$LATEST" || aws.ToString(out.ResponseStreamContentType) != "text/plain" {
			t.Errorf("output %+v", out)
		}
		chunks, complete := streamEvents(t, out)
		if diff := cmp.Diff([]string{"one ", "two ", "three"}, chunks); diff != "" {
			t.Errorf("chunks (-want +got):\n%s", diff)
		}
		if complete == nil || complete.ErrorCode != nil || aws.ToString(complete.LogResult) != base64.StdEncoding.EncodeToString([]byte("tail")) {
			t.Errorf("InvokeComplete %+v", complete)
		}
		if req := e.inv.last(); req.Stream == nil || string(req.Payload) != `{"a":1}` || !req.TailLog {
			t.Errorf("invoker got %+v", req)
		}
	})
	t.Run("buffered answer", func(t *testing.T) {
		e.inv.respond = func(req *InvokeRequest) (*InvokeResult, error) {
			return &InvokeResult{Payload: []byte(`{"whole":true}`), ExecutedVersion: "$LATEST"}, nil
		}
		out, err := e.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fn")})
		if err != nil {
			t.Fatal(err)
		}
		chunks, complete := streamEvents(t, out)
		if len(chunks) != 1 || chunks[0] != `{"whole":true}` || complete == nil || aws.ToString(out.ResponseStreamContentType) != "application/json" {
			t.Errorf("chunks %q, complete %+v, content type %q", chunks, complete, aws.ToString(out.ResponseStreamContentType))
		}
	})
	t.Run("function error after a chunk", func(t *testing.T) {
		e.inv.respond = func(req *InvokeRequest) (*InvokeResult, error) {
			req.Stream.Start("application/octet-stream")
			_, _ = req.Stream.Write([]byte("partial"))
			return &InvokeResult{Streamed: true, FunctionError: "Unhandled", ErrorType: "Sandbox.Timedout",
				Payload: []byte(`{"errorMessage":"Task timed out after 1.00 seconds","errorType":"Sandbox.Timedout"}`)}, nil
		}
		out, err := e.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fn")})
		if err != nil {
			t.Fatal(err)
		}
		chunks, complete := streamEvents(t, out)
		if len(chunks) != 1 || chunks[0] != "partial" || complete == nil ||
			aws.ToString(complete.ErrorCode) != "Sandbox.Timedout" || aws.ToString(complete.ErrorDetails) != "Task timed out after 1.00 seconds" || complete.LogResult != nil {
			t.Errorf("chunks %q, complete %+v", chunks, complete)
		}
	})
	t.Run("throttled before it starts", func(t *testing.T) {
		e.inv.respond = func(req *InvokeRequest) (*InvokeResult, error) {
			return nil, awserr.Throttled(awserr.ReasonConcurrentInvocationLimitExceeded, "Rate Exceeded.")
		}
		_, err := e.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fn")})
		wantErr[*types.TooManyRequestsException](t, err)
	})
	t.Run("refusals", func(t *testing.T) {
		_, err := e.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("nofn")})
		wantErr[*types.ResourceNotFoundException](t, err)
		out, err := e.client.InvokeWithResponseStream(ctx, &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fn"), InvocationType: types.ResponseStreamingInvocationTypeDryRun})
		if err != nil || out.StatusCode != 204 {
			t.Errorf("dry run: %+v %v", out, err)
		}
	})
}
