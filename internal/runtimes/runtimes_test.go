package runtimes

import (
	"errors"
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
	if _, err := CommandFor("provided.al2023", Dirs{CodeDir: code, TaskRoot: "/var/task"}); err == nil || !strings.Contains(err.Error(), "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]") {
		t.Errorf("missing bootstrap: %v", err)
	}
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := CommandFor("provided", Dirs{CodeDir: code, TaskRoot: "/var/task"})
	if err != nil || c.Path != "/var/task/bootstrap" || len(c.Args) != 1 {
		t.Errorf("provided: %+v %v", c, err)
	}
	if _, err := execLookPath("node"); err == nil {
		c, err := CommandFor("nodejs20.x", Dirs{CodeDir: code, TaskRoot: "/var/task", RuntimeDir: "/var/runtime"})
		if err != nil || !filepath.IsAbs(c.Args[0]) || c.Args[1] != "/var/runtime/node/bootstrap.mjs" {
			t.Errorf("node: %+v %v", c, err)
		}
	}
	if _, err := execLookPath("python3"); err == nil {
		c, err := CommandFor("python3.12", Dirs{CodeDir: code, TaskRoot: "/var/task", RuntimeDir: "/var/runtime"})
		if err != nil || !filepath.IsAbs(c.Args[0]) || c.Args[len(c.Args)-1] != "/var/runtime/python/bootstrap.py" {
			t.Errorf("python: %+v %v", c, err)
		}
	}
	if _, err := CommandFor("java21", Dirs{CodeDir: code, TaskRoot: "/var/task"}); err == nil {
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

// Layers are found where Lambda's runtimes look for them.
func TestCommandForLayers(t *testing.T) {
	code, opt := t.TempDir(), t.TempDir()
	d := Dirs{CodeDir: code, OptDir: opt, TaskRoot: "/var/task", RuntimeDir: "/var/runtime", OptRoot: "/opt"}
	if _, err := CommandFor("provided.al2023", d); !errors.Is(err, ErrNoBootstrap) {
		t.Errorf("no bootstrap anywhere: %v", err)
	}
	if err := os.WriteFile(filepath.Join(opt, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if c, err := CommandFor("provided.al2023", d); err != nil || c.Path != "/opt/bootstrap" {
		t.Errorf("bootstrap of a layer: %+v %v", c, err)
	}
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if c, err := CommandFor("provided.al2023", d); err != nil || c.Path != "/var/task/bootstrap" {
		t.Errorf("the code's bootstrap comes first: %+v %v", c, err)
	}
	env := func(c Command, key string) string {
		for _, kv := range c.Env {
			if v, ok := strings.CutPrefix(kv, key+"="); ok {
				return v
			}
		}
		return ""
	}
	if _, err := execLookPath("node"); err == nil {
		c, err := CommandFor("nodejs22.x", d)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := env(c, "NODE_PATH"), "/opt/nodejs/node22/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task:/var/task/node_modules"; got != want {
			t.Errorf("NODE_PATH = %s, want %s", got, want)
		}
	}
	if _, err := execLookPath("python3"); err == nil {
		c, err := CommandFor("python3.13", d)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := env(c, "PYTHONPATH"), "/opt/python/lib/python3.13/site-packages:/opt/python"; got != want {
			t.Errorf("PYTHONPATH = %s, want %s", got, want)
		}
	}
}
