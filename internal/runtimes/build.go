package runtimes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// A runtime build is what an environment of a runtime family runs on a
// machine: for Node.js and Python, the machine's interpreter and the
// bootstrap shoal embeds; for provided runtimes, nothing of shoal's or the
// machine's (the function brings its own bootstrap). A new interpreter on
// the machine or a shoal binary with other bootstraps makes a new build, which
// the control plane rolls through the fleet (docs/decisions/instance-rotation.md).

// String names the family: "provided", "node", "python" ("" when unknown).
func (k Kind) String() string {
	switch k {
	case Provided:
		return "provided"
	case Node:
		return "node"
	case Python:
		return "python"
	}
	return ""
}

var (
	bootstrapOnce sync.Once
	bootstrapSum  string
)

// BootstrapHash identifies the bootstraps this binary embeds: the sha256 (hex)
// of every embedded file's name and contents.
func BootstrapHash() string {
	bootstrapOnce.Do(func() {
		h := sha256.New()
		_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := files.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s %d\n", p, len(b))
			h.Write(b)
			return nil
		})
		bootstrapSum = hex.EncodeToString(h.Sum(nil))
	})
	return bootstrapSum
}

// VersionID is the last part of the RuntimeVersionArn of runtime on build:
// a sha256 (hex), as long as Lambda's runtime version ids.
func VersionID(runtime, build string) string {
	sum := sha256.Sum256([]byte("shoal runtime " + runtime + "\n" + build))
	return hex.EncodeToString(sum[:])
}

// Prober tells which build of each runtime family this machine runs: the
// interpreter on PATH (its real path, size, modification time and what its
// --version says) with the embedded bootstrap. It runs an interpreter's
// --version only when the interpreter's file changed. Safe for concurrent use.
type Prober struct {
	mu    sync.Mutex
	cache map[Kind]probed
}

type probed struct {
	path    string
	size    int64
	modTime time.Time
	build   string
}

// Build returns the build identity (a sha256, hex) of a runtime family on this
// machine now, or an error when its interpreter is missing.
func (p *Prober) Build(k Kind) (string, error) {
	var name string
	switch k {
	case Provided:
		return "provided", nil
	case Node:
		name = "node"
	case Python:
		name = "python3"
	default:
		return "", fmt.Errorf("runtimes: no build of an unknown runtime family")
	}
	path, err := lookPath(name)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("runtimes: %w", err)
	}
	p.mu.Lock()
	c, ok := p.cache[k]
	p.mu.Unlock()
	if ok && c.path == path && c.size == st.Size() && c.modTime.Equal(st.ModTime()) {
		return c.build, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("runtimes: %s --version: %w", path, err)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\n%s\n%d %d\n%s\n%s", k, path, st.Size(), st.ModTime().UnixNano(),
		strings.TrimSpace(string(out)), BootstrapHash()))
	c = probed{path: path, size: st.Size(), modTime: st.ModTime(), build: hex.EncodeToString(sum[:])}
	p.mu.Lock()
	if p.cache == nil {
		p.cache = map[Kind]probed{}
	}
	p.cache[k] = c
	p.mu.Unlock()
	return c.build, nil
}

// Builds returns the build of every family whose interpreter is found, by
// family name.
func (p *Prober) Builds() map[string]string {
	out := map[string]string{}
	for _, k := range []Kind{Provided, Node, Python} {
		if b, err := p.Build(k); err == nil {
			out[k.String()] = b
		}
	}
	return out
}
