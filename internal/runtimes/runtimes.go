// Package runtimes knows how each Lambda runtime identifier is started: the
// package's own bootstrap for provided runtimes, and for nodejs* and
// python3.* the small bootstrap programs shoal ships (embedded here) run by
// the machine's node and python3.
//
// It only describes commands and writes the bootstrap files; it starts no
// process and knows nothing of sandboxes or the Runtime API server.
package runtimes

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

//go:embed node/*.mjs python/*.py
var files embed.FS

// Kind is a family of runtimes.
type Kind int

const (
	Unknown Kind = iota
	Provided
	Node
	Python
)

// KindOf returns the family of a runtime identifier such as
// "provided.al2023", "nodejs20.x" or "python3.12".
func KindOf(runtime string) Kind {
	switch {
	case runtime == "provided" || strings.HasPrefix(runtime, "provided."):
		return Provided
	case strings.HasPrefix(runtime, "nodejs") && strings.HasSuffix(runtime, ".x"):
		return Node
	case strings.HasPrefix(runtime, "python3."):
		return Python
	}
	return Unknown
}

// Supported reports whether shoal can run the runtime.
func Supported(runtime string) bool { return KindOf(runtime) != Unknown }

// ExecutionEnv is AWS_LAMBDA_EXECUTION_ENV's value: AWS_Lambda_<runtime>.
func ExecutionEnv(runtime string) string { return "AWS_Lambda_" + runtime }

// ErrNoBootstrap is returned by Command when a provided runtime's package
// has no executable bootstrap.
var ErrNoBootstrap = errors.New("runtimes: no bootstrap")

// Command is how to start a runtime: an executable and its arguments.
type Command struct {
	Path string
	Args []string // argv, Args[0] included
	// Env holds variables this runtime adds (NAME=value), after Lambda's.
	Env []string
}

// CommandFor returns the command that starts runtime in an environment whose
// code is visible at taskRoot and shoal's bootstraps at runtimeDir (where
// Install wrote them). codeDir is where the code is on this machine, used
// to check for a provided runtime's bootstrap.
func CommandFor(runtime, codeDir, taskRoot, runtimeDir string) (Command, error) {
	switch KindOf(runtime) {
	case Provided:
		st, err := os.Stat(filepath.Join(codeDir, "bootstrap"))
		if err != nil || st.IsDir() {
			return Command{}, fmt.Errorf("%w: Couldn't find valid bootstrap(s): [%s /opt/bootstrap]",
				ErrNoBootstrap, filepath.Join(taskRoot, "bootstrap"))
		}
		p := filepath.Join(taskRoot, "bootstrap")
		return Command{Path: p, Args: []string{p}}, nil
	case Node:
		node, err := lookPath("node")
		if err != nil {
			return Command{}, err
		}
		script := filepath.Join(runtimeDir, "node", "bootstrap.mjs")
		return Command{Path: node, Args: []string{node, script},
			Env: []string{"NODE_PATH=" + taskRoot + "/node_modules"}}, nil
	case Python:
		py, err := lookPath("python3")
		if err != nil {
			return Command{}, err
		}
		script := filepath.Join(runtimeDir, "python", "bootstrap.py")
		return Command{Path: py, Args: []string{py, "-u", script},
			Env: []string{"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"}}, nil
	}
	return Command{}, fmt.Errorf("runtimes: unsupported runtime %q", runtime)
}

// lookPath finds an interpreter, preferring a real binary over a pyenv shim
// (a shim re-execs through a shell script, which costs cold-start time).
func lookPath(name string) (string, error) {
	if name == "python3" {
		if p, err := realPython(); err == nil {
			return p, nil
		}
	}
	p, err := execLookPath(name)
	if err != nil {
		return "", fmt.Errorf("runtimes: %s not found on PATH: %w", name, err)
	}
	return p, nil
}

// Install writes the embedded bootstraps under dir (dir/node, dir/python).
// It is idempotent and safe to call from several goroutines for different
// dirs.
func Install(dir string) error {
	return fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		if cur, err := os.ReadFile(dst); err == nil && string(cur) == string(b) {
			return nil
		}
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return fmt.Errorf("runtimes: install %s: %w", p, err)
		}
		return os.Rename(tmp, dst)
	})
}
