package test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/cli"
	"github.com/shoal-dev/shoal/internal/poll"
)

// shoalCLI runs a shoal client command in this process against s.
func shoalCLI(t *testing.T, s *shoal, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	// The client commands find shoal's keys as the AWS SDKs do.
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", s.keys.file)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_PROFILE", "")
	var out, errb bytes.Buffer
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = cli.Main(c, append(args, "--endpoint-url", s.endpoint), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func TestFnCommands(t *testing.T) {
	s := startShoal(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.js"),
		[]byte(`exports.handler = async (e) => { console.log("hello from node", e.name); return {hi: e.name}; };`), 0o644); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := shoalCLI(t, s, "fn", "create", "clifn", "--runtime", "nodejs20.x", "--handler", "index.handler",
		"--code", dir, "--memory", "256", "--env", "AB=CD", "-o", "json")
	if code != 0 {
		t.Fatalf("create exit %d: %s %s", code, out, errOut)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["FunctionName"] != "clifn" || created["MemorySize"] != float64(256) {
		t.Fatalf("create printed %s (%v)", out, err)
	}

	out, errOut, code = shoalCLI(t, s, "fn", "invoke", "clifn", "--payload", `{"name":"cli"}`, "--logs")
	if code != 0 || strings.TrimSpace(out) != `{"hi":"cli"}` {
		t.Fatalf("invoke exit %d: %q %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "hello from node cli") || !strings.Contains(errOut, "REPORT RequestId:") {
		t.Fatalf("invoke --logs printed %q", errOut)
	}

	out, _, code = shoalCLI(t, s, "fn", "publish", "clifn", "-o", "json")
	if code != 0 || !strings.Contains(out, `"Version": "1"`) {
		t.Fatalf("publish exit %d: %s", code, out)
	}
	out, _, code = shoalCLI(t, s, "fn", "list")
	if code != 0 || !strings.Contains(out, "clifn") || !strings.Contains(out, "nodejs20.x") {
		t.Fatalf("list exit %d: %s", code, out)
	}
	out, _, code = shoalCLI(t, s, "fn", "get", "clifn", "-q", "1")
	if code != 0 || !strings.Contains(out, "clifn:1") {
		t.Fatalf("get exit %d: %s", code, out)
	}
	poll.Until(t, 10*time.Second, func() error {
		out, errOut, code = shoalCLI(t, s, "fn", "logs", "clifn")
		if code != 0 || !strings.Contains(out, "hello from node cli") || !strings.Contains(out, "END RequestId:") {
			return errUnexpected("logs", out+errOut)
		}
		return nil
	})

	// A function error is printed and exits non-zero.
	if err := os.WriteFile(filepath.Join(dir, "index.js"), []byte(`exports.handler = async () => { throw new Error("no"); };`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := shoalCLI(t, s, "fn", "update", "clifn", "--code", dir); code != 0 {
		t.Fatalf("update exit %d: %s", code, errOut)
	}
	out, _, code = shoalCLI(t, s, "fn", "invoke", "clifn")
	if code != 2 || !strings.Contains(out, `"errorMessage":"no"`) {
		t.Fatalf("invoke of a failing function: exit %d, %s", code, out)
	}

	_, errOut, code = shoalCLI(t, s, "fn", "get", "missing")
	if code == 0 || !strings.Contains(errOut, "ResourceNotFoundException") {
		t.Fatalf("get of a missing function: exit %d, %s", code, errOut)
	}
	if _, errOut, code := shoalCLI(t, s, "fn", "delete", "clifn"); code != 0 {
		t.Fatalf("delete exit %d: %s", code, errOut)
	}
}
