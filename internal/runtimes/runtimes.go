// Package runtimes knows how each Lambda runtime identifier is started: the
// package's own bootstrap for provided runtimes, and for nodejs* and
// python3.* the small bootstrap programs shoal ships (embedded here) run by
// the machine's node and python3.
//
// It describes commands, writes the bootstrap files and tells runtime builds
// apart (build.go: the one process it starts is an interpreter's --version);
// it knows nothing of sandboxes or the Runtime API server.
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

// Dirs are where an environment's files are: on this machine (CodeDir, OptDir),
// and as its runtime sees them (TaskRoot, RuntimeDir, OptRoot).
type Dirs struct {
	// CodeDir holds the unpacked code on this machine; OptDir the function's
	// layers ("" when it has none).
	CodeDir, OptDir string
	// TaskRoot is where the runtime sees the code (/var/task), RuntimeDir shoal's
	// bootstraps (where Install wrote them), OptRoot the layers (/opt).
	TaskRoot, RuntimeDir, OptRoot string
}

// CommandFor returns the command that starts runtime in an environment laid out
// as d says. Layers are found where Lambda's runtimes find them: a provided
// runtime's bootstrap at /opt/bootstrap when the code has none, Node.js modules in
// /opt/nodejs/node<major>/node_modules and /opt/nodejs/node_modules, Python
// packages in /opt/python/lib/python3.<minor>/site-packages and /opt/python.
// (/opt/bin and /opt/lib are on PATH and LD_LIBRARY_PATH for every runtime.)
func CommandFor(runtime string, d Dirs) (Command, error) {
	if d.OptRoot == "" {
		d.OptRoot = "/opt"
	}
	switch KindOf(runtime) {
	case Provided:
		if isFile(filepath.Join(d.CodeDir, "bootstrap")) {
			p := filepath.Join(d.TaskRoot, "bootstrap")
			return Command{Path: p, Args: []string{p}}, nil
		}
		if d.OptDir != "" && isFile(filepath.Join(d.OptDir, "bootstrap")) {
			p := filepath.Join(d.OptRoot, "bootstrap")
			return Command{Path: p, Args: []string{p}}, nil
		}
		return Command{}, fmt.Errorf("%w: Couldn't find valid bootstrap(s): [%s %s]",
			ErrNoBootstrap, filepath.Join(d.TaskRoot, "bootstrap"), filepath.Join(d.OptRoot, "bootstrap"))
	case Node:
		node, err := interpreter("node", d)
		if err != nil {
			return Command{}, err
		}
		script := filepath.Join(d.RuntimeDir, "node", "bootstrap.mjs")
		major := strings.TrimSuffix(strings.TrimPrefix(runtime, "nodejs"), ".x")
		nodePath := strings.Join([]string{
			d.OptRoot + "/nodejs/node" + major + "/node_modules", d.OptRoot + "/nodejs/node_modules",
			d.RuntimeDir + "/node_modules", d.RuntimeDir, d.TaskRoot, d.TaskRoot + "/node_modules",
		}, ":")
		return Command{Path: node, Args: []string{node, script}, Env: []string{"NODE_PATH=" + nodePath}}, nil
	case Python:
		py, err := interpreter("python3", d)
		if err != nil {
			return Command{}, err
		}
		script := filepath.Join(d.RuntimeDir, "python", "bootstrap.py")
		pythonPath := d.OptRoot + "/python/lib/" + runtime + "/site-packages:" + d.OptRoot + "/python"
		return Command{Path: py, Args: []string{py, "-u", script},
			Env: []string{"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH=" + pythonPath}}, nil
	}
	return Command{}, fmt.Errorf("runtimes: unsupported runtime %q", runtime)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// interpreter finds the machine's interpreter name. One under /opt cannot run where
// a function's layers take the place of /opt.
func interpreter(name string, d Dirs) (string, error) {
	p, err := lookPath(name)
	if err != nil {
		return "", err
	}
	if d.OptDir != "" && d.OptRoot == "/opt" && strings.HasPrefix(p, "/opt/") {
		return "", fmt.Errorf("runtimes: %s is installed under /opt (%s), which the function's layers replace; install it elsewhere", name, p)
	}
	return p, nil
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
