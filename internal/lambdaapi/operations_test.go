package lambdaapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// sdkOperations reads the operations and their HTTP bindings from the model
// the AWS SDK for Go v2 this module builds with was generated from.
func sdkOperations(t *testing.T) []operation {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2/service/lambda").Output()
	if err != nil {
		t.Fatalf("locating the SDK: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "schemas", "schemas.go"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`Name:\s+"(\w+)",\s*\}, smithy\.ShapeTypeOperation, 0, &smithytraits\.HTTP\{Method: "(\w+)",\s*URI:\s+"([^"]+)"`)
	var ops []operation
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		ops = append(ops, operation{Name: m[1], Method: m[2], URI: m[3]})
	}
	if len(ops) < 80 {
		t.Fatalf("found only %d operations in the SDK's model", len(ops))
	}
	return ops
}

// The table of operations is the SDK's.
func TestOperationsMatchTheSDK(t *testing.T) {
	sdk := sdkOperations(t)
	want := map[operation]bool{}
	for _, op := range sdk {
		want[op] = true
	}
	have := map[operation]bool{}
	for _, op := range operations {
		have[op] = true
		if !want[op] {
			t.Errorf("%+v is not in the SDK's model", op)
		}
	}
	for _, op := range sdk {
		if !have[op] {
			t.Errorf("the SDK's %+v is missing from operations", op)
		}
	}
}

// Every operation of the API is either served or answered with a modelled
// error that names it: never a 404 UnknownOperationException.
func TestEveryOperationIsAnswered(t *testing.T) {
	e := newEnv(t)
	e.create(t, "fn")
	label := regexp.MustCompile(`\{[^}]+\}`)
	implemented := 0
	var unimplemented []string
	for _, op := range sdkOperations(t) {
		t.Run(op.Name, func(t *testing.T) {
			uri := label.ReplaceAllStringFunc(op.URI, func(l string) string {
				switch l {
				case "{FunctionName}":
					return "fn"
				case "{Resource}", "{ResourceArn}", "{DurableExecutionArn}", "{CodeSigningConfigArn}":
					return "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Afn"
				}
				return "x1"
			})
			req, err := http.NewRequest(op.Method, e.url+uri, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			code, _, _ := strings.Cut(resp.Header.Get("X-Amzn-Errortype"), ":")
			var msg struct {
				Lower string `json:"message"`
				Upper string `json:"Message"`
			}
			_ = json.Unmarshal(body, &msg)
			text := msg.Lower + msg.Upper
			switch {
			case code == "UnknownOperationException":
				t.Errorf("%s %s: %d %s %s", op.Method, uri, resp.StatusCode, code, body)
			case strings.Contains(text, "does not implement"):
				if resp.StatusCode != 400 || code != "InvalidParameterValueException" || !strings.Contains(text, "the "+op.Name+" operation") {
					t.Errorf("%s %s: %d %s %q", op.Method, uri, resp.StatusCode, code, text)
				}
				unimplemented = append(unimplemented, op.Name)
			default:
				implemented++
			}
		})
	}
	if implemented < 40 {
		t.Errorf("only %d operations are served", implemented)
	}
	t.Logf("%d operations served, %d answered as not implemented: %s", implemented, len(unimplemented), strings.Join(unimplemented, ", "))
}

// The SDK reads the answer to an operation shoal does not implement as the
// typed error, and does not retry it.
func TestUnimplementedOperationsThroughTheSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	calls := map[string]func() error{
		"GetCodeSigningConfig": func() error {
			_, err := e.client.GetCodeSigningConfig(ctx, &lambda.GetCodeSigningConfigInput{CodeSigningConfigArn: aws.String("arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-1")})
			return err
		},
		"CreateEventSourceMapping": func() error {
			_, err := e.client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("fn"), EventSourceArn: aws.String("arn:aws:sqs:us-east-1:123456789012:q")})
			return err
		},
		"ListFunctionsByCodeSigningConfig": func() error {
			_, err := e.client.ListFunctionsByCodeSigningConfig(ctx, &lambda.ListFunctionsByCodeSigningConfigInput{CodeSigningConfigArn: aws.String("arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-1")})
			return err
		},
		"ListEventSourceMappings": func() error {
			_, err := e.client.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{})
			return err
		},
		"SendDurableExecutionCallbackSuccess": func() error {
			_, err := e.client.SendDurableExecutionCallbackSuccess(ctx, &lambda.SendDurableExecutionCallbackSuccessInput{CallbackId: aws.String("cb-1")})
			return err
		},
		"GetDurableExecution": func() error {
			_, err := e.client.GetDurableExecution(ctx, &lambda.GetDurableExecutionInput{DurableExecutionArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST/durable-execution/x/y")})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			ipv := wantErr[*types.InvalidParameterValueException](t, err)
			if !strings.Contains(aws.ToString(ipv.Message), "does not implement the "+name+" operation") {
				t.Errorf("message %q", aws.ToString(ipv.Message))
			}
		})
	}
}
