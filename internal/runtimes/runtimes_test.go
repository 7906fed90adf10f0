package runtimes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKindOf(t *testing.T) {
	cases := []struct {
		runtime string
		want    Kind
	}{
		{"provided.al2023", Provided},
		{"provided.al2", Provided},
		{"provided", Provided},
		{"nodejs20.x", Node},
		{"nodejs22.x", Node},
		{"python3.13", Python},
		{"python3.9", Python},
		{"java21", Unknown},
		{"nodejs", Unknown},
		{"python2.7", Unknown},
		{"", Unknown},
	}
	for _, c := range cases {
		t.Run(c.runtime, func(t *testing.T) {
			if got := KindOf(c.runtime); got != c.want {
				t.Errorf("KindOf(%q) = %v, want %v", c.runtime, got, c.want)
			}
		})
	}
}

func TestCommandFor(t *testing.T) {
	code := t.TempDir()
	if _, err := CommandFor("provided.al2023", code, "/var/task", ""); err == nil || !strings.Contains(err.Error(), "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]") {
		t.Errorf("missing bootstrap: %v", err)
	}
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := CommandFor("provided", code, "/var/task", "")
	if err != nil || c.Path != "/var/task/bootstrap" || len(c.Args) != 1 {
		t.Errorf("provided: %+v %v", c, err)
	}
	if _, err := execLookPath("node"); err == nil {
		c, err := CommandFor("nodejs20.x", code, "/var/task", "/var/runtime")
		if err != nil || !filepath.IsAbs(c.Args[0]) || c.Args[1] != "/var/runtime/node/bootstrap.mjs" {
			t.Errorf("node: %+v %v", c, err)
		}
	}
	if _, err := execLookPath("python3"); err == nil {
		c, err := CommandFor("python3.12", code, "/var/task", "/var/runtime")
		if err != nil || !filepath.IsAbs(c.Args[0]) || c.Args[len(c.Args)-1] != "/var/runtime/python/bootstrap.py" {
			t.Errorf("python: %+v %v", c, err)
		}
	}
	if _, err := CommandFor("java21", code, "/var/task", ""); err == nil {
		t.Error("java21 accepted")
	}
}

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	for range 2 { // idempotent
		if err := Install(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"node/bootstrap.mjs", "python/bootstrap.py"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
