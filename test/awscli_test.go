package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/awscli"
)

// runAWS runs the aws CLI against s, signing with the key of s's credentials
// file as a user who exported AWS_SHARED_CREDENTIALS_FILE would.
func runAWS(t *testing.T, bin string, s *shoal, args ...string) (string, int) {
	t.Helper()
	return runAWSWith(t, bin, s.endpoint, []string{"AWS_SHARED_CREDENTIALS_FILE=" + s.keys.file}, args...)
}

// runAWSWith runs the aws CLI against endpoint with env added to a clean AWS
// environment (no keys, profiles or config of the machine's own).
func runAWSWith(t *testing.T, bin, endpoint string, env []string, args ...string) (string, int) {
	t.Helper()
	out, code, err := awscli.CLI{Path: bin}.Run(endpoint, env, args...)
	if err != nil {
		t.Fatalf("aws %v: %v", args, err)
	}
	return out, code
}

// TestAWSCLI drives shoal with the aws CLI v2, as the README's on-demand
// steps do.
func TestAWSCLI(t *testing.T) {
	bin := awscli.V2(t).Path
	s := startShoal(t)
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "fn.zip")
	if err := os.WriteFile(zipPath, goFnZip, 0o644); err != nil {
		t.Fatal(err)
	}

	out, code := runAWS(t, bin, s, "lambda", "create-function", "--function-name", "cli-echo",
		"--runtime", "provided.al2023", "--handler", "bootstrap", "--role", role,
		"--zip-file", "fileb://"+zipPath, "--memory-size", "128", "--timeout", "10",
		"--environment", "Variables={KEY=VAL}")
	if code != 0 {
		t.Fatalf("create-function exit %d: %s", code, out)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["FunctionName"] != "cli-echo" {
		t.Fatalf("create-function printed %s (%v)", out, err)
	}

	args := []string{"lambda", "invoke", "--function-name", "cli-echo", "--payload", `{"hello":"world"}`,
		"--cli-binary-format", "raw-in-base64-out"}
	resp := filepath.Join(dir, "out.json")
	out, code = runAWS(t, bin, s, append(args, "--log-type", "Tail", resp)...)
	if code != 0 {
		t.Fatalf("invoke exit %d: %s", code, out)
	}
	var meta map[string]any
	if err := json.Unmarshal([]byte(out), &meta); err != nil || meta["StatusCode"] != float64(200) || meta["LogResult"] == nil {
		t.Fatalf("invoke printed %s (%v)", out, err)
	}
	if b, _ := os.ReadFile(resp); string(b) != `{"hello":"world"}` {
		t.Fatalf("invoke response %q", b)
	}

	out, code = runAWS(t, bin, s, "lambda", "get-function", "--function-name", "nope")
	if code != 254 || !strings.Contains(out, "ResourceNotFoundException") {
		t.Fatalf("get-function of a missing function: exit %d, %s", code, out)
	}

	out, code = runAWS(t, bin, s, "lambda", "list-functions")
	if code != 0 || !strings.Contains(out, "cli-echo") {
		t.Fatalf("list-functions exit %d: %s", code, out)
	}
	out, code = runAWS(t, bin, s, "lambda", "publish-version", "--function-name", "cli-echo")
	if code != 0 || !strings.Contains(out, `"Version": "1"`) {
		t.Fatalf("publish-version exit %d: %s", code, out)
	}
	out, code = runAWS(t, bin, s, "lambda", "delete-function", "--function-name", "cli-echo")
	if code != 0 {
		t.Fatalf("delete-function exit %d: %s", code, out)
	}
}

func mustVersion(t *testing.T, bin string) string {
	t.Helper()
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	return string(out)
}
