package instance

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/sandbox"
)

// codeCache fetches code packages from the JetStream object store and unpacks
// each once into dir/<sha256 hex>/, shared by every environment of that code.
// A directory is used only once its unpacking finished (a ".complete" marker
// beside it), so an agent that died half-way never serves half a package.
//
// Concurrency: dir, js and bucket are immutable; mu guards inflight and obj.
type codeCache struct {
	dir    string
	js     jetstream.JetStream
	bucket string

	mu       sync.Mutex
	obj      jetstream.ObjectStore
	inflight map[string]*codeLoad
}

type codeLoad struct {
	done chan struct{}
	path string
	err  error
}

// codeKey is the object name of a package in the code store: the hex form of
// its CodeSha256 (as the registry names it; base64 has '/' and '+').
func codeKey(codeSha256 string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(codeSha256)
	if err != nil || len(b) != sha256.Size {
		return "", false
	}
	return hex.EncodeToString(b), true
}

func newCodeCache(dir string, js jetstream.JetStream, bucket string) *codeCache {
	return &codeCache{dir: dir, js: js, bucket: bucket, inflight: make(map[string]*codeLoad)}
}

// CodeDir returns the unpacked directory of the package whose CodeSha256
// (base64, as Lambda reports it) is given.
func (c *codeCache) CodeDir(ctx context.Context, codeSha256 string) (string, error) {
	key, ok := codeKey(codeSha256)
	if !ok {
		return "", fmt.Errorf("code: bad CodeSha256 %q", codeSha256)
	}
	path := filepath.Join(c.dir, key)
	if _, err := os.Stat(path + ".complete"); err == nil {
		return path, nil
	}
	c.mu.Lock()
	l := c.inflight[key]
	if l == nil {
		l = &codeLoad{done: make(chan struct{})}
		c.inflight[key] = l
		c.mu.Unlock()
		l.path, l.err = c.load(ctx, key, path)
		close(l.done)
		c.mu.Lock()
		delete(c.inflight, key)
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

func (c *codeCache) store(ctx context.Context) (jetstream.ObjectStore, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.obj != nil {
		return c.obj, nil
	}
	obj, err := c.js.ObjectStore(ctx, c.bucket)
	if err != nil {
		return nil, fmt.Errorf("code: object store %s: %w", c.bucket, err)
	}
	c.obj = obj
	return obj, nil
}

func (c *codeCache) load(ctx context.Context, key, path string) (string, error) {
	obj, err := c.store(ctx)
	if err != nil {
		return "", err
	}
	zipData, err := obj.GetBytes(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", fmt.Errorf("code: package %s not found", key)
	}
	if err != nil {
		return "", fmt.Errorf("code: fetch %s: %w", key, err)
	}
	if err := os.RemoveAll(path); err != nil {
		return "", fmt.Errorf("code: %w", err)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return "", fmt.Errorf("code: %w", err)
	}
	if err := sandbox.Unzip(zipData, path, sandbox.UnzipLimits{}); err != nil {
		return "", fmt.Errorf("code: unpack %s: %w", key, err)
	}
	if err := os.WriteFile(path+".complete", nil, 0o644); err != nil {
		return "", fmt.Errorf("code: %w", err)
	}
	return path, nil
}
