package registry

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// CodeSha256 is Lambda's CodeSha256 of a package: base64 of its SHA-256.
func CodeSha256(zip []byte) string {
	sum := sha256.Sum256(zip)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// CodeKey is the object name of a package in the code store, and the {sha} of its
// download URL: the hex form of its CodeSha256 (base64 has '/' and '+').
func CodeKey(codeSha256 string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(codeSha256)
	if err != nil || len(b) != sha256.Size {
		return "", false
	}
	return hex.EncodeToString(b), true
}

// CodeSha256FromKey reverses CodeKey.
func CodeSha256FromKey(key string) (string, bool) {
	b, err := hex.DecodeString(key)
	if err != nil || len(b) != sha256.Size {
		return "", false
	}
	return base64.StdEncoding.EncodeToString(b), true
}

// Code returns the zip whose CodeSha256 is codeSha256 (as in a Version).
func (r *Registry) Code(ctx context.Context, codeSha256 string) ([]byte, error) {
	key, ok := CodeKey(codeSha256)
	if !ok {
		return nil, awserr.NotFound("Code not found: %s", codeSha256)
	}
	b, err := r.obj.GetBytes(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, awserr.NotFound("Code not found: %s", codeSha256)
	}
	if err != nil {
		return nil, awserr.Service(err, "failed to read code %s", codeSha256)
	}
	return b, nil
}

// putCode stores a package under its hash unless it is already there. The caller
// holds codeMu read-locked until the record that refers to it is committed.
func (r *Registry) putCode(ctx context.Context, zip []byte) (sha string, err error) {
	sha = CodeSha256(zip)
	key, _ := CodeKey(sha)
	if _, err := r.obj.GetInfo(ctx, key); err == nil {
		return sha, nil
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", awserr.Service(err, "failed to look up code")
	}
	if _, err := r.obj.PutBytes(ctx, key, zip); err != nil {
		return "", awserr.Service(err, "failed to store code")
	}
	return sha, nil
}

// collectCode deletes the packages among candidates that no function version and no
// layer version refers to any more. Best effort: a failure only leaves an unused object behind.
func (r *Registry) collectCode(ctx context.Context, candidates ...string) {
	if len(candidates) == 0 {
		return
	}
	r.codeMu.Lock()
	defer r.codeMu.Unlock()
	used := make(map[string]bool)
	r.mu.RLock()
	for _, c := range r.funcs {
		if c.rec == nil {
			continue
		}
		used[c.rec.Latest.CodeSha256] = true
		for _, v := range c.rec.Versions {
			used[v.CodeSha256] = true
		}
		for _, ro := range c.rec.Rollouts {
			if ro.Previous != nil {
				used[ro.Previous.CodeSha256] = true
			}
		}
		for _, l := range c.rec.Layers {
			used[l.CodeSha256] = true
		}
	}
	for _, c := range r.layers {
		if c.rec == nil {
			continue
		}
		for _, lv := range c.rec.Versions {
			used[lv.CodeSha256] = true
		}
	}
	r.mu.RUnlock()
	for _, sha := range candidates {
		if used[sha] {
			continue
		}
		key, ok := CodeKey(sha)
		if !ok {
			continue
		}
		if err := r.obj.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			r.log.Warn("code garbage collection failed", "code_sha256", sha, "err", err)
		}
	}
}
