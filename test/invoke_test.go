package test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/poll"
)

func invoke(t *testing.T, s *shoal, in *lambda.InvokeInput) *lambda.InvokeOutput {
	t.Helper()
	out, err := s.client.Invoke(ctx(t), in)
	if err != nil {
		t.Fatalf("Invoke %s: %v", aws.ToString(in.FunctionName), err)
	}
	return out
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("payload %q: %v", b, err)
	}
	return m
}

func TestInvoke(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "echo", func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "hi"}}
	})

	t.Run("echo with tail logs", func(t *testing.T) {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("echo"),
			Payload: []byte(`{"hello":"world"}`), LogType: types.LogTypeTail})
		if out.StatusCode != 200 || string(out.Payload) != `{"hello":"world"}` || out.FunctionError != nil {
			t.Fatalf("status %d payload %s error %v", out.StatusCode, out.Payload, out.FunctionError)
		}
		if aws.ToString(out.ExecutedVersion) != "$LATEST" {
			t.Fatalf("executed version %q", aws.ToString(out.ExecutedVersion))
		}
		logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"START RequestId:", "END RequestId:", "REPORT RequestId:", "Billed Duration:", "Max Memory Used:"} {
			if !bytes.Contains(logs, []byte(want)) {
				t.Fatalf("tail log lacks %q:\n%s", want, logs)
			}
		}
	})

	t.Run("cold start reports init duration, warm does not", func(t *testing.T) {
		createGoFn(t, s, "cold")
		first := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("cold"), LogType: types.LogTypeTail})
		second := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("cold"), LogType: types.LogTypeTail})
		l1, _ := base64.StdEncoding.DecodeString(aws.ToString(first.LogResult))
		l2, _ := base64.StdEncoding.DecodeString(aws.ToString(second.LogResult))
		if !bytes.Contains(l1, []byte("Init Duration:")) {
			t.Fatalf("first invoke's REPORT lacks Init Duration:\n%s", l1)
		}
		if bytes.Contains(l2, []byte("Init Duration:")) {
			t.Fatalf("warm invoke's REPORT has Init Duration:\n%s", l2)
		}
	})

	t.Run("environment and context", func(t *testing.T) {
		cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("echo"),
			Payload: []byte(`{"op":"context"}`), ClientContext: aws.String(cc)})
		m := decode(t, out.Payload)
		if m["function_arn"] != "arn:aws:lambda:us-east-1:123456789012:function:echo" ||
			m["function_name"] != "echo" || m["version"] != "$LATEST" || m["memory_mb"] != float64(256) {
			t.Fatalf("context = %v", m)
		}
		if custom, _ := m["client_custom"].(map[string]any); custom["k"] != "v" {
			t.Fatalf("client context custom = %v", m["client_custom"])
		}
		if rid, _ := m["request_id"].(string); len(rid) != 36 {
			t.Fatalf("request id %q", rid)
		}
		if rem, _ := m["remaining_ms"].(float64); rem <= 0 || rem > 10000 {
			t.Fatalf("remaining time %v ms with a 10 s timeout", rem)
		}
		env := decode(t, invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"op":"env"}`)}).Payload)
		for k, want := range map[string]string{"GREETING": "hi", "AWS_LAMBDA_FUNCTION_NAME": "echo",
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_REGION": "us-east-1", "_HANDLER": "bootstrap",
			"AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"} {
			if env[k] != want {
				t.Errorf("%s = %v, want %q", k, env[k], want)
			}
		}
		if env["AWS_LAMBDA_RUNTIME_API"] == nil || env["LAMBDA_TASK_ROOT"] == nil {
			t.Errorf("runtime variables missing: %v", env)
		}
	})

	t.Run("qualifiers and ARNs", func(t *testing.T) {
		v, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("echo")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.client.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("echo"),
			Name: aws.String("live"), FunctionVersion: v.Version}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, qualifier, want string }{
			{"echo", "1", "1"},
			{"echo", "live", "1"},
			{"arn:aws:lambda:us-east-1:123456789012:function:echo", "", "$LATEST"},
			{"arn:aws:lambda:us-east-1:123456789012:function:echo:live", "", "1"},
			{"123456789012:function:echo", "$LATEST", "$LATEST"},
		} {
			out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String(tc.name), Qualifier: optional(tc.qualifier),
				Payload: []byte(`{"op":"context"}`)})
			if got := aws.ToString(out.ExecutedVersion); got != tc.want {
				t.Errorf("%s qualifier %q ran %s, want %s", tc.name, tc.qualifier, got, tc.want)
			}
		}
		_, err = s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String("nope")})
		if !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("unknown alias: %v", err)
		}
		_, err = s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String("9")})
		if !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("unknown version: %v", err)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeDryRun})
		if out.StatusCode != 204 {
			t.Fatalf("DryRun status %d", out.StatusCode)
		}
	})

	t.Run("event invocations are queued", func(t *testing.T) {
		out, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent})
		if err != nil || out.StatusCode != 202 {
			t.Fatalf("Event invoke: %v, want 202 (async_test.go has the rest)", err)
		}
	})

	t.Run("unknown function", func(t *testing.T) {
		_, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("nobody")})
		if !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("oversize request", func(t *testing.T) {
		big := fmt.Sprintf(`{"pad":"%s"}`, strings.Repeat("x", 6*1024*1024))
		_, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(big)})
		if !isErr[*types.RequestTooLargeException](err) {
			t.Fatalf("err = %v, want RequestTooLargeException", err)
		}
	})

	t.Run("oversize response", func(t *testing.T) {
		out, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"op":"big","mb":7}`)})
		if err == nil && out.FunctionError == nil {
			t.Fatalf("a %d-byte response was returned without an error", len(out.Payload))
		}
	})
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// A function with the JSON log format: LogType Tail carries Lambda's JSON
// system records, the runtime is told the format and level, and lines below
// the application log level are dropped.
func TestInvokeJSONLogFormat(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "jsonlog", func(in *lambda.CreateFunctionInput) {
		in.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelWarn}
	})
	tail := func(value string) (recs []string, text string) {
		t.Helper()
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("jsonlog"),
			Payload: []byte(`{"op":"log","value":"` + value + `"}`), LogType: types.LogTypeTail})
		logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(logs), "\n"), "\n") {
			var rec struct {
				Type   string         `json:"type"`
				Record map[string]any `json:"record"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Type, "platform.") {
				recs = append(recs, rec.Type)
			}
		}
		return recs, string(logs)
	}
	got, text := tail("at warn")
	if strings.Join(got, " ") != "platform.start platform.report" || strings.Contains(text, "hello from the function") ||
		strings.Contains(text, "START RequestId") {
		t.Fatalf("tail at WARN (records %v):\n%s", got, text)
	}
	env := decode(t, invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("jsonlog"), Payload: []byte(`{"op":"env"}`)}).Payload)
	if env["AWS_LAMBDA_LOG_FORMAT"] != "JSON" || env["AWS_LAMBDA_LOG_LEVEL"] != "WARN" {
		t.Errorf("AWS_LAMBDA_LOG_FORMAT=%v AWS_LAMBDA_LOG_LEVEL=%v", env["AWS_LAMBDA_LOG_FORMAT"], env["AWS_LAMBDA_LOG_LEVEL"])
	}
	if _, err := s.client.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("jsonlog"),
		LoggingConfig: &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelInfo}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if _, text := tail("at info"); !strings.Contains(text, "hello from the function: at info\n") {
			return fmt.Errorf("the function's line is missing at INFO:\n%s", text)
		}
		return nil
	})
}
