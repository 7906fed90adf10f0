// Package codecache unpacks function code packages once per CodeSha256 into a
// directory that every environment of that code shares. Where the zips come from
// (the registry's object store, directly or over NATS) is the caller's fetch
// function; this package only unpacks, with internal/sandbox's checks and limits.
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

// Cache unpacks code packages once into dir/<sha256 hex>/ and serves the
// directory to every environment of that code. A directory is used only once its
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
	raw, err := base64.StdEncoding.DecodeString(codeSha256)
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("code: bad CodeSha256 %q", codeSha256)
	}
	name := hex.EncodeToString(raw)
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
		l.path, l.err = c.load(ctx, codeSha256, path)
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

func (c *Cache) load(ctx context.Context, codeSha256, path string) (string, error) {
	zipData, err := c.fetch(ctx, codeSha256)
	if err != nil {
		return "", fmt.Errorf("code: fetch %s: %w", codeSha256, err)
	}
	if err := os.RemoveAll(path); err != nil {
		return "", fmt.Errorf("code: %w", err)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return "", fmt.Errorf("code: %w", err)
	}
	if err := sandbox.Unzip(zipData, path, sandbox.UnzipLimits{}); err != nil {
		return "", fmt.Errorf("code: unpack %s: %w", codeSha256, err)
	}
	if err := os.WriteFile(path+".complete", nil, 0o644); err != nil {
		return "", fmt.Errorf("code: %w", err)
	}
	return path, nil
}
