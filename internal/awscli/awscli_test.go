package awscli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestInstalled finds both CLIs where the tests expect them.
func TestInstalled(t *testing.T) {
	if v2 := V2(t); v2.Path != V2Path || !strings.HasPrefix(v2.Version, "aws-cli/2.") {
		t.Errorf("V2 = %+v", v2)
	}
	v1 := V1(t)
	if want := os.Getenv(V1Env); want != "" && v1.Path != want {
		t.Errorf("V1 path %s, want $%s = %s", v1.Path, V1Env, want)
	}
	if !strings.HasPrefix(v1.Version, "aws-cli/1.") {
		t.Errorf("V1 = %+v", v1)
	}
	// v1 knows the Managed Instances operations: without arguments it asks
	// for them rather than calling the command invalid.
	out, code, err := v1.Run("http://127.0.0.1:1", AnyKeys, "lambda", "create-capacity-provider")
	if err != nil || code == 0 || !strings.Contains(out, "--capacity-provider-name") {
		t.Errorf("create-capacity-provider without arguments: exit %d, %v: %s", code, err, out)
	}
}

// TestVersionCheck runs a stand-in CLI of the wrong major version.
func TestVersionCheck(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "aws")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'aws-cli/3.0.0 Python/3.13'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := versionOf(fake)
	if err != nil || v != "aws-cli/3.0.0 Python/3.13" {
		t.Fatalf("versionOf = %q, %v", v, err)
	}
	t.Setenv(V1Env, fake)
	rec := &fatalRecorder{TB: t}
	V1(rec)
	if !strings.Contains(rec.failed, "want the aws CLI v1") {
		t.Errorf("V1 with a v3 CLI: failed with %q", rec.failed)
	}
	rec = &fatalRecorder{TB: t}
	Installed(rec)
	if !strings.Contains(rec.failed, "want the aws CLI v1") {
		t.Errorf("Installed with a v3 CLI as v1: failed with %q", rec.failed)
	}
	t.Setenv(V1Env, filepath.Join(t.TempDir(), "missing"))
	rec = &fatalRecorder{TB: t}
	V1(rec)
	if !strings.Contains(rec.skipped, "the aws CLI v1 is not installed") {
		t.Errorf("V1 with no CLI: skipped with %q", rec.skipped)
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("AWS_PROFILE", "prod")
	t.Setenv("AWS_ACCESS_KEY_ID", "real")
	t.Setenv("HOME", "/root")
	got := Environ(AnyKeys...)
	for _, kv := range []string{"AWS_PROFILE=prod", "AWS_ACCESS_KEY_ID=real"} {
		if slices.Contains(got, kv) {
			t.Errorf("kept %s", kv)
		}
	}
	for _, kv := range []string{"HOME=/root", "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_DEFAULT_REGION=us-east-1", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"} {
		if !slices.Contains(got, kv) {
			t.Errorf("no %s in %v", kv, got)
		}
	}
	// What the caller adds comes last, so it wins.
	got = Environ("AWS_SHARED_CREDENTIALS_FILE=/keys")
	if got[len(got)-1] != "AWS_SHARED_CREDENTIALS_FILE=/keys" {
		t.Errorf("Environ ends %q", got[len(got)-1])
	}
}

func TestInstalledAndKnows(t *testing.T) {
	clis := Installed(t)
	if len(clis) != 2 || !strings.HasPrefix(clis[0].Version, "aws-cli/2.") || !strings.HasPrefix(clis[1].Version, "aws-cli/1.") {
		t.Fatalf("Installed = %+v, want v2 then v1", clis)
	}
	v2, v1 := clis[0], clis[1]
	if !v2.Knows("invoke") || v2.Knows("no-such-command") {
		t.Errorf("v2 Knows invoke %v, no-such-command %v", v2.Knows("invoke"), v2.Knows("no-such-command"))
	}
	if !v1.Knows("create-capacity-provider") {
		t.Error("v1 does not know create-capacity-provider")
	}
}

// fatalRecorder is a test whose Fatalf and Skip record the message and go
// on (find then returns a CLI that is not used).
type fatalRecorder struct {
	testing.TB
	failed, skipped string
}

func (r *fatalRecorder) Helper()                           {}
func (r *fatalRecorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }
func (r *fatalRecorder) Fatal(args ...any)                 { r.failed = fmt.Sprint(args...) }
func (r *fatalRecorder) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
