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

// zipOf builds a package of the given files (mode 0755 for names under bin/).
func zipOf(t *testing.T, files map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
		hdr.SetMode(0o644)
		if filepath.Dir(name) == "bin" {
			hdr.SetMode(0o755)
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), base64.StdEncoding.EncodeToString(sum[:])
}

// Layers merge in order, a later layer's file replacing an earlier one's; each
// layer is unpacked once and each list merged once.
func TestOptDir(t *testing.T) {
	first, sha1 := zipOf(t, map[string]string{"python/shared.py": "FROM = 'first'\n", "python/one.py": "1\n", "bin/tool": "#!/bin/sh\necho first\n"})
	second, sha2 := zipOf(t, map[string]string{"python/shared.py": "FROM = 'second'\n", "lib/libx.so": "elf"})
	zips := map[string][]byte{sha1: first, sha2: second}
	fetched := map[string]int{}
	var mu sync.Mutex
	dir := t.TempDir()
	c := New(dir, func(ctx context.Context, sha string) ([]byte, error) {
		mu.Lock()
		fetched[sha]++
		mu.Unlock()
		if z, ok := zips[sha]; ok {
			return z, nil
		}
		return nil, errors.New("unknown package")
	})
	ctx := context.Background()
	if d, err := c.OptDir(ctx, nil); d != "" || err != nil {
		t.Fatalf("no layers: %q %v", d, err)
	}
	one, err := c.OptDir(ctx, []string{sha1})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.CodeDir(ctx, sha1); one != code {
		t.Errorf("a single layer is not its own directory: %s, %s", one, code)
	}
	both, err := c.OptDir(ctx, []string{sha1, sha2})
	if err != nil {
		t.Fatal(err)
	}
	read := func(d, name string) string {
		b, err := os.ReadFile(filepath.Join(d, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(both, "python/shared.py"); got != "FROM = 'second'\n" {
		t.Errorf("the later layer does not win: %q", got)
	}
	if read(both, "python/one.py") != "1\n" || read(both, "lib/libx.so") != "elf" {
		t.Error("files of either layer are missing")
	}
	if st, err := os.Stat(filepath.Join(both, "bin/tool")); err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Errorf("bin/tool lost its mode: %v %v", st, err)
	}
	reversed, err := c.OptDir(ctx, []string{sha2, sha1})
	if err != nil {
		t.Fatal(err)
	}
	if reversed == both || read(reversed, "python/shared.py") != "FROM = 'first'\n" {
		t.Errorf("the order of layers is not kept: %s", read(reversed, "python/shared.py"))
	}
	// The layers' own directories are untouched by the merges.
	if code, _ := c.CodeDir(ctx, sha1); read(code, "python/shared.py") != "FROM = 'first'\n" {
		t.Error("merging changed a layer's directory")
	}
	// Again, and after a restart: nothing is fetched or merged twice.
	again, err := New(dir, c.fetch).OptDir(ctx, []string{sha1, sha2})
	if err != nil || again != both {
		t.Fatalf("again: %s %v", again, err)
	}
	if fetched[sha1] != 1 || fetched[sha2] != 1 {
		t.Errorf("fetches %v, want one of each", fetched)
	}
	if _, err := c.OptDir(ctx, []string{sha1, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}); err == nil {
		t.Error("a missing layer gave a directory")
	}
}
