package test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/awscli"
)

// cliFor finds an aws CLI that knows the lambda subcommand: v2 first, then
// v1 (internal/awscli).
func cliFor(t *testing.T, command string) string {
	t.Helper()
	for _, c := range awscli.Installed(t) {
		if c.Knows(command) {
			return c.Path
		}
	}
	t.Skipf("neither the aws CLI v2 at %s nor the v1 knows `aws lambda %s`", awscli.V2Path, command)
	return ""
}

// TestAWSCLIFunctionURLs: add-permission and create-function-url-config with
// the aws CLI, then the URL answers curl-free over HTTP.
func TestAWSCLIFunctionURLs(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "cli-url")

	bin := cliFor(t, "create-function-url-config")
	out, code := runAWS(t, bin, s, "lambda", "create-function-url-config", "--function-name", "cli-url",
		"--auth-type", "NONE", "--cors", "AllowOrigins=https://a.example,AllowMethods=GET")
	if code != 0 {
		t.Fatalf("create-function-url-config exit %d: %s", code, out)
	}
	var created struct {
		FunctionUrl, AuthType, FunctionArn string
		Cors                               struct{ AllowOrigins []string }
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.AuthType != "NONE" ||
		!strings.HasPrefix(created.FunctionUrl, "http://"+s.srv.URLAddr()+"/") || len(created.Cors.AllowOrigins) != 1 {
		t.Fatalf("create-function-url-config printed %s (%v)", out, err)
	}
	resp, err := http.Get(created.FunctionUrl)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("before add-permission the URL answered %d", resp.StatusCode)
	}

	bin = cliFor(t, "add-permission")
	out, code = runAWS(t, bin, s, "lambda", "add-permission", "--function-name", "cli-url",
		"--statement-id", "public", "--action", "lambda:InvokeFunctionUrl", "--principal", "*", "--function-url-auth-type", "NONE")
	if code != 0 {
		t.Fatalf("add-permission exit %d: %s", code, out)
	}
	var added struct{ Statement string }
	if err := json.Unmarshal([]byte(out), &added); err != nil || !strings.Contains(added.Statement, `"Action":"lambda:InvokeFunctionUrl"`) ||
		!strings.Contains(added.Statement, `"Principal":"*"`) {
		t.Fatalf("add-permission printed %s (%v)", out, err)
	}
	out, code = runAWS(t, bin, s, "lambda", "add-permission", "--function-name", "cli-url",
		"--statement-id", "public", "--action", "lambda:InvokeFunctionUrl", "--principal", "*")
	if code == 0 || !strings.Contains(out, "ResourceConflictException") {
		t.Fatalf("a second add-permission of the same statement id: exit %d, %s", code, out)
	}
	resp, err = http.Get(created.FunctionUrl + "?op=status&code=200")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "status 200" {
		t.Fatalf("after add-permission the URL answered %d %q", resp.StatusCode, b)
	}
	out, code = runAWS(t, bin, s, "lambda", "get-policy", "--function-name", "cli-url")
	if code != 0 || !strings.Contains(out, "RevisionId") {
		t.Fatalf("get-policy exit %d: %s", code, out)
	}
}

// TestAWSCLIInvokeWithResponseStream: the aws CLI reads a streamed response.
func TestAWSCLIInvokeWithResponseStream(t *testing.T) {
	bin := cliFor(t, "invoke-with-response-stream")
	s := startShoal(t)
	createGoFn(t, s, "cli-stream")
	dir := t.TempDir()
	outFile := filepath.Join(dir, "out")
	args := []string{"lambda", "invoke-with-response-stream", "--function-name", "cli-stream", "--payload", `{"op":"stream","ms":1}`}
	if strings.Contains(mustVersion(t, bin), "aws-cli/2") {
		args = append(args, "--cli-binary-format", "raw-in-base64-out")
	}
	out, code := runAWS(t, bin, s, append(args, outFile)...)
	if code != 0 {
		t.Fatalf("invoke-with-response-stream exit %d: %s", code, out)
	}
	if b, _ := os.ReadFile(outFile); !strings.Contains(string(b)+out, "first chunk;") {
		t.Fatalf("invoke-with-response-stream wrote %q, printed %s", b, out)
	}
}
