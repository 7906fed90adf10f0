// Package codecache unpacks function code packages and layers once per CodeSha256
// into a directory that every environment of that code shares, and merges a
// function's layers, in order, into the directory its environments see as /opt
// (OptDir). Where the zips come from (the registry's object store, directly or
// over NATS) is the caller's fetch function; this package only unpacks, with
// internal/sandbox's checks and limits.
package codecache

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/shoal-dev/shoal/internal/sandbox"
)

// Cache unpacks code packages once into dir/<sha256 hex>/ (and merges layers into
// dir/opt-<sha256 of their list>/) and serves the directory to every environment
// of that code. A directory is used only once its
// unpacking finished (a ".complete" marker beside it), so a crash half-way never
// serves half a package.
//
// Concurrency: dir and fetch are immutable; mu guards inflight.
type Cache struct {
	dir   string
	fetch Fetch

	mu       sync.Mutex // guards inflight
	inflight map[string]*codeLoad
}

type codeLoad struct {
	done chan struct{}
	path string
	err  error
}

// Fetch returns the zip of the package whose CodeSha256 is given.
type Fetch func(ctx context.Context, codeSha256 string) ([]byte, error)

// New returns a cache that unpacks into dir what fetch returns.
func New(dir string, fetch Fetch) *Cache {
	return &Cache{dir: dir, fetch: fetch, inflight: make(map[string]*codeLoad)}
}

// CodeDir returns the unpacked directory of the package whose CodeSha256 (base64,
// as Lambda reports it) is given.
func (c *Cache) CodeDir(ctx context.Context, codeSha256 string) (string, error) {
	name, err := hexName(codeSha256)
	if err != nil {
		return "", err
	}
	return c.once(ctx, name, func(path string) error { return c.load(ctx, codeSha256, path) })
}

func hexName(codeSha256 string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(codeSha256)
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("code: bad CodeSha256 %q", codeSha256)
	}
	return hex.EncodeToString(raw), nil
}

// once returns dir/name, which build makes unless a complete one is there: one
// build at a time per name, others wait for it (or their ctx).
func (c *Cache) once(ctx context.Context, name string, build func(path string) error) (string, error) {
	path := filepath.Join(c.dir, name)
	if _, err := os.Stat(path + ".complete"); err == nil {
		return path, nil
	}
	c.mu.Lock()
	l := c.inflight[name]
	if l == nil {
		// A load that finished since the first look has left its marker.
		if _, err := os.Stat(path + ".complete"); err == nil {
			c.mu.Unlock()
			return path, nil
		}
		l = &codeLoad{done: make(chan struct{})}
		c.inflight[name] = l
		c.mu.Unlock()
		l.err = c.build(path, build)
		if l.err == nil {
			l.path = path
		}
		close(l.done)
		c.mu.Lock()
		delete(c.inflight, name)
		c.mu.Unlock()
		return l.path, l.err
	}
	c.mu.Unlock()
	select {
	case <-l.done:
		return l.path, l.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// build makes path afresh with fn and marks it complete.
func (c *Cache) build(path string, fn func(path string) error) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("code: %w", err)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("code: %w", err)
	}
	if err := fn(path); err != nil {
		return err
	}
	if err := os.WriteFile(path+".complete", nil, 0o644); err != nil {
		return fmt.Errorf("code: %w", err)
	}
	return nil
}

func (c *Cache) load(ctx context.Context, codeSha256, path string) error {
	zipData, err := c.fetch(ctx, codeSha256)
	if err != nil {
		return fmt.Errorf("code: fetch %s: %w", codeSha256, err)
	}
	if err := sandbox.Unzip(zipData, path, sandbox.UnzipLimits{}); err != nil {
		return fmt.Errorf("code: unpack %s: %w", codeSha256, err)
	}
	return nil
}
