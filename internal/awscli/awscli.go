// Package awscli finds and runs, for shoal's tests, the two aws CLIs that
// users drive shoal with: v2, from Debian's awscli package at /usr/bin/aws
// (what the README's on-demand steps use), and v1 (aws-cli 1.x), whose
// botocore knows the 2025-11-30 Managed Instances operations that Debian's
// v2.9 lacks.
//
// Each is looked for in one place, so a test runs the same CLI on every
// machine: v2 at V2Path, v1 at $SHOAL_AWS_CLI_V1 (which .ci/run sets) or
// else V1Default. A test whose CLI is missing skips and says which (CI fails
// on skips it does not allow); one that finds the wrong major version fails.
// Only tests import this package.
package awscli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const (
	// V2Path is where Debian's awscli package installs the CLI v2.
	V2Path = "/usr/bin/aws"
	// V1Env names the CLI v1 to use.
	V1Env = "SHOAL_AWS_CLI_V1"
	// V1Default is the CLI v1 when V1Env is not set: pyenv's shim of
	// `pip install awscli`.
	V1Default = "/root/.pyenv/shims/aws"
)

// CLI is one aws CLI.
type CLI struct {
	Path    string
	Version string // what `aws --version` prints, e.g. "aws-cli/2.9.19 Python/3.11.2 …"
}

// V2 returns the aws CLI v2, or skips the test when it is not installed.
func V2(t testing.TB) CLI {
	t.Helper()
	return find(t, V2Path, "2", "the aws CLI v2 is not installed at "+V2Path+" (Debian package awscli)")
}

// V1 returns the aws CLI v1, or skips the test when there is none.
func V1(t testing.TB) CLI {
	t.Helper()
	path := v1Path()
	return find(t, path, "1", fmt.Sprintf("the aws CLI v1 is not installed at %s (set %s to another; pip install awscli)", path, V1Env))
}

func v1Path() string {
	if p := os.Getenv(V1Env); p != "" {
		return p
	}
	return V1Default
}

func find(t testing.TB, path, major, missing string) CLI {
	t.Helper()
	c, ok, err := lookup(path, major)
	if !ok {
		t.Skip(missing)
		return CLI{}
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Installed returns the CLIs that are where V2 and V1 look, v2 first; it
// fails the test for one of the wrong major version.
func Installed(t testing.TB) []CLI {
	t.Helper()
	var out []CLI
	for _, w := range []struct{ path, major string }{{V2Path, "2"}, {v1Path(), "1"}} {
		c, ok, err := lookup(w.path, w.major)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// lookup returns the CLI at path; ok is false when nothing is there, err
// says what is wrong with what is.
func lookup(path, major string) (_ CLI, ok bool, _ error) {
	if _, err := os.Stat(path); err != nil {
		return CLI{}, false, nil
	}
	version, err := versionOf(path)
	if err != nil {
		return CLI{}, true, fmt.Errorf("%s --version: %w", path, err)
	}
	if !strings.HasPrefix(version, "aws-cli/"+major+".") {
		return CLI{}, true, fmt.Errorf("%s is %q, want the aws CLI v%s", path, version, major)
	}
	return CLI{Path: path, Version: version}, true, nil
}

func versionOf(path string) (string, error) {
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// AnyKeys are keys for a shoal that does not check signatures.
var AnyKeys = []string{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret"}

// Environ is this process's environment without its AWS_ variables, with a
// fixed region, no pager, profile, config or instance metadata, and the
// variables of extra last (AnyKeys, or AWS_SHARED_CREDENTIALS_FILE=…).
func Environ(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	out = append(out, "AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	return append(out, extra...)
}

// Command is the CLI run with args against the shoal at endpoint, with JSON
// output, in Environ(env...).
func (c CLI) Command(endpoint string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(c.Path, append([]string{"--endpoint-url", endpoint, "--output", "json"}, args...)...)
	cmd.Env = Environ(env...)
	return cmd
}

// Run runs Command and returns its output (stdout and stderr) and exit
// code. An error means the CLI could not be run at all.
func (c CLI) Run(endpoint string, env []string, args ...string) (string, int, error) {
	out, err := c.Command(endpoint, env, args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode(), nil
	}
	if err != nil {
		return string(out), -1, err
	}
	return string(out), 0, nil
}

// Knows reports whether the CLI has `aws lambda <command>`.
func (c CLI) Knows(command string) bool {
	out, _ := exec.Command(c.Path, "lambda", command, "help").CombinedOutput()
	return !strings.Contains(string(out), "Invalid choice")
}
