package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// codeStore fetches code packages from the control plane's JetStream object
// store; internal/codecache unpacks each once for the agent's environments.
//
// Concurrency: js and bucket are immutable; mu guards obj.
type codeStore struct {
	js     jetstream.JetStream
	bucket string

	mu  sync.Mutex
	obj jetstream.ObjectStore
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

func (c *codeStore) store(ctx context.Context) (jetstream.ObjectStore, error) {
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

// Fetch returns the zip whose CodeSha256 (base64, as Lambda reports it) is given.
func (c *codeStore) Fetch(ctx context.Context, codeSha256 string) ([]byte, error) {
	key, ok := codeKey(codeSha256)
	if !ok {
		return nil, fmt.Errorf("code: bad CodeSha256 %q", codeSha256)
	}
	obj, err := c.store(ctx)
	if err != nil {
		return nil, err
	}
	zipData, err := obj.GetBytes(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("code: package %s not found", key)
	}
	if err != nil {
		return nil, fmt.Errorf("code: fetch %s: %w", key, err)
	}
	return zipData, nil
}
