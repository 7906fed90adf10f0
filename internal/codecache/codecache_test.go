package codecache

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func testZip(t *testing.T) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	hdr.SetMode(0o755)
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("#!/bin/sh\necho hi\n")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), base64.StdEncoding.EncodeToString(sum[:])
}

func TestUnpacksOnceAndShares(t *testing.T) {
	data, sha := testZip(t)
	var fetches atomic.Int32
	dir := t.TempDir()
	fetch := func(ctx context.Context, s string) ([]byte, error) {
		fetches.Add(1)
		if s != sha {
			return nil, errors.New("unknown package")
		}
		return data, nil
	}
	c := New(dir, fetch)
	var wg sync.WaitGroup
	paths := make([]string, 8)
	for i := range paths {
		wg.Go(func() {
			p, err := c.CodeDir(context.Background(), sha)
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		})
	}
	wg.Wait()
	for _, p := range paths {
		if p != paths[0] {
			t.Fatalf("paths differ: %v", paths)
		}
	}
	st, err := os.Stat(filepath.Join(paths[0], "bootstrap"))
	if err != nil || st.Mode().Perm()&0o100 == 0 {
		t.Fatalf("bootstrap: %v, mode %v", err, st.Mode())
	}
	// A new cache on the same directory (a restart) reuses the complete unpacking.
	if _, err := New(dir, fetch).CodeDir(context.Background(), sha); err != nil {
		t.Fatal(err)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("fetched %d times, want once", n)
	}
}

func TestErrors(t *testing.T) {
	c := New(t.TempDir(), func(context.Context, string) ([]byte, error) { return []byte("not a zip"), nil })
	if _, err := c.CodeDir(context.Background(), "not base64!"); err == nil {
		t.Fatal("a bad CodeSha256 was accepted")
	}
	sum := sha256.Sum256([]byte("x"))
	if _, err := c.CodeDir(context.Background(), base64.StdEncoding.EncodeToString(sum[:])); err == nil {
		t.Fatal("an unreadable package was unpacked")
	}
}
