package sandbox

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// zent is one entry of a test archive.
type zent struct {
	name   string
	mode   fs.FileMode // 0 = 0644 file
	body   string      // file content or link target
	method uint16
}

func makeZip(t testing.TB, ents ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		h := &zip.FileHeader{Name: e.name, Method: e.method}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tree lists dir as "path mode [-> target]" lines, sorted.
func tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := rel + " " + info.Mode().String()
		if info.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestUnzipValid(t *testing.T) {
	data := makeZip(t,
		zent{name: "bootstrap", mode: 0o755, body: "#!/bin/sh\necho hi\n", method: zip.Deflate},
		zent{name: "lib/", mode: fs.ModeDir | 0o700},
		zent{name: "lib/data.txt", mode: 0o600, body: "data"},
		zent{name: "lib/tool", mode: 0o4711, body: "x"}, // setuid dropped, exec kept
		zent{name: "deep/a/b/c.txt", body: "implicit parents"},
		zent{name: "./dot.txt", body: "dot"},
		zent{name: "node_modules/.bin/cli", mode: fs.ModeSymlink | 0o777, body: "../pkg/cli.js"},
		zent{name: "node_modules/pkg/cli.js", mode: 0o755, body: "js"},
		zent{name: "self", mode: fs.ModeSymlink | 0o777, body: "."},
		zent{name: "dangling", mode: fs.ModeSymlink | 0o777, body: "lib/missing"},
	)
	dir := filepath.Join(t.TempDir(), "code")
	if err := Unzip(data, dir, UnzipLimits{}); err != nil {
		t.Fatalf("Unzip: %v", err)
	}
	want := []string{
		". drwxr-xr-x",
		"bootstrap -rwxr-xr-x",
		"dangling Lrwxrwxrwx -> lib/missing",
		"deep drwxr-xr-x",
		"deep/a drwxr-xr-x",
		"deep/a/b drwxr-xr-x",
		"deep/a/b/c.txt -rw-r--r--",
		"dot.txt -rw-r--r--",
		"lib drwxr-xr-x",
		"lib/data.txt -rw-r--r--",
		"lib/tool -rwxr-xr-x",
		"node_modules drwxr-xr-x",
		"node_modules/.bin drwxr-xr-x",
		"node_modules/.bin/cli Lrwxrwxrwx -> ../pkg/cli.js",
		"node_modules/pkg drwxr-xr-x",
		"node_modules/pkg/cli.js -rwxr-xr-x",
		"self Lrwxrwxrwx -> .",
	}
	if diff := cmp.Diff(want, tree(t, dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bootstrap"))
	if err != nil || string(b) != "#!/bin/sh\necho hi\n" {
		t.Errorf("bootstrap = %q, %v", b, err)
	}
	b, err = os.ReadFile(filepath.Join(dir, "node_modules/.bin/cli"))
	if err != nil || string(b) != "js" {
		t.Errorf("through link = %q, %v", b, err)
	}
}

func TestUnzipRejects(t *testing.T) {
	link := fs.ModeSymlink | 0o777
	tests := []struct {
		name    string
		ents    []zent
		limits  UnzipLimits
		wantErr error
	}{
		{name: "dotdot", ents: []zent{{name: "../x", body: "x"}}, wantErr: ErrInvalidZip},
		{name: "absolute", ents: []zent{{name: "/abs", body: "x"}}, wantErr: ErrInvalidZip},
		{name: "inner dotdot", ents: []zent{{name: "a/../../x", body: "x"}}, wantErr: ErrInvalidZip},
		{name: "harmless-looking dotdot", ents: []zent{{name: "a/../x", body: "x"}}, wantErr: ErrInvalidZip},
		{name: "backslash dotdot", ents: []zent{{name: `..\x`, body: "x"}}, wantErr: ErrInvalidZip},
		{name: "drive letter", ents: []zent{{name: `C:\x`, body: "x"}}, wantErr: ErrInvalidZip},
		{name: "nul", ents: []zent{{name: "a\x00b", body: "x"}}, wantErr: ErrInvalidZip},
		{name: "empty name", ents: []zent{{name: "", body: "x"}}, wantErr: ErrInvalidZip},
		{name: "duplicate", ents: []zent{{name: "a", body: "1"}, {name: "./a", body: "2"}}, wantErr: ErrInvalidZip},
		{name: "file under file", ents: []zent{{name: "a", body: "1"}, {name: "a/b", body: "2"}}, wantErr: ErrInvalidZip},
		{name: "named pipe", ents: []zent{{name: "p", mode: fs.ModeNamedPipe | 0o644}}, wantErr: ErrInvalidZip},
		{name: "device", ents: []zent{{name: "d", mode: fs.ModeDevice | 0o644}}, wantErr: ErrInvalidZip},
		{name: "link absolute", ents: []zent{{name: "l", mode: link, body: "/etc/passwd"}}, wantErr: ErrInvalidZip},
		{name: "link dotdot", ents: []zent{{name: "l", mode: link, body: "../outside"}}, wantErr: ErrInvalidZip},
		{name: "link deep dotdot", ents: []zent{{name: "a/b/l", mode: link, body: "../../../x"}}, wantErr: ErrInvalidZip},
		{name: "link chain escape", ents: []zent{
			{name: "dir/up", mode: link, body: ".."}, // resolves to the root: fine alone
			{name: "l", mode: link, body: "dir/up/../etc"},
		}, wantErr: ErrInvalidZip},
		{name: "link via link escape", ents: []zent{
			{name: "a", mode: link, body: "b/c"},
			{name: "b/c", mode: link, body: "../.."},
		}, wantErr: ErrInvalidZip},
		{name: "link loop", ents: []zent{
			{name: "a", mode: link, body: "b"},
			{name: "b", mode: link, body: "a"},
		}, wantErr: ErrInvalidZip},
		{name: "file through link", ents: []zent{
			{name: "l", mode: link, body: "."},
			{name: "l/x", body: "x"},
		}, wantErr: ErrInvalidZip},
		{name: "empty link", ents: []zent{{name: "l", mode: link}}, wantErr: ErrInvalidZip},
		{name: "too many files", ents: []zent{{name: "a"}, {name: "b"}, {name: "c"}},
			limits: UnzipLimits{MaxFiles: 2}, wantErr: ErrTooLarge},
		{name: "declared too large", ents: []zent{{name: "a", body: strings.Repeat("a", 600)}, {name: "b", body: strings.Repeat("b", 600)}},
			limits: UnzipLimits{MaxUnzippedBytes: 1000}, wantErr: ErrTooLarge},
		{name: "not a zip", wantErr: ErrInvalidZip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte("this is not a zip file")
			if tt.ents != nil {
				data = makeZip(t, tt.ents...)
			}
			parent := t.TempDir()
			dir := filepath.Join(parent, "code")
			err := Unzip(data, dir, tt.limits)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Unzip = %v, want %v", err, tt.wantErr)
			}
			assertContained(t, parent, "code")
		})
	}
}

// assertContained fails if parent holds anything but dir, or if any link under dir
// resolves outside it.
func assertContained(t testing.TB, parent, dir string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != dir {
			t.Fatalf("unzip wrote %q outside its directory", e.Name())
		}
	}
	root := filepath.Join(parent, dir)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return // nothing created
	}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if rel, err := filepath.Rel(realRoot, real); err != nil || !filepath.IsLocal(rel) && rel != "." {
				t.Fatalf("link %s resolves outside the tree to %s", p, real)
			}
		}
		return nil
	})
}

// TestUnzipBomb unpacks a highly compressed archive whose real size is over the limit.
func TestUnzipBomb(t *testing.T) {
	const limit = 10 << 20
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("zeros")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for range limit/len(chunk) + 1 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > limit/100 {
		t.Fatalf("archive is %d bytes, not a bomb", buf.Len())
	}
	parent := t.TempDir()
	err = Unzip(buf.Bytes(), filepath.Join(parent, "code"), UnzipLimits{MaxUnzippedBytes: limit})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Unzip = %v, want ErrTooLarge", err)
	}
	assertContained(t, parent, "code")
}

// TestUnzipLyingHeader patches an archive so its headers understate the real size: the
// bytes actually decompressed are what count.
func TestUnzipLyingHeader(t *testing.T) {
	const real = 1 << 20
	data := makeZip(t, zent{name: "big", body: strings.Repeat("z", real), method: zip.Deflate})
	// Patch the uncompressed size (offset 22 in the local header, 24 in the central one).
	patched := bytes.Clone(data)
	patchSize := func(sig []byte, off int) {
		i := bytes.Index(patched, sig)
		if i < 0 {
			t.Fatalf("signature %x not found", sig)
		}
		if got := binary.LittleEndian.Uint32(patched[i+off:]); got != real {
			t.Fatalf("size field at %d = %d, want %d", off, got, real)
		}
		binary.LittleEndian.PutUint32(patched[i+off:], 100)
	}
	patchSize([]byte("PK\x01\x02"), 24)
	if i := bytes.Index(patched, []byte("PK\x07\x08")); i >= 0 { // data descriptor
		binary.LittleEndian.PutUint32(patched[i+12:], 100)
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "code")
	err := Unzip(patched, dir, UnzipLimits{MaxUnzippedBytes: 1000})
	if !errors.Is(err, ErrInvalidZip) && !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Unzip = %v, want ErrInvalidZip or ErrTooLarge", err)
	}
	if info, err := os.Stat(filepath.Join(dir, "big")); err == nil && info.Size() > 1001 {
		t.Fatalf("wrote %d bytes past the limit", info.Size())
	}
	assertContained(t, parent, "code")
}

func FuzzUnzip(f *testing.F) {
	link := fs.ModeSymlink | 0o777
	f.Add(makeZip(f, zent{name: "bootstrap", mode: 0o755, body: "#!/bin/sh"}, zent{name: "a/b.txt", body: "b"}))
	f.Add(makeZip(f, zent{name: "../x", body: "x"}))
	f.Add(makeZip(f, zent{name: "l", mode: link, body: "../x"}, zent{name: "d/", mode: fs.ModeDir | 0o755}))
	f.Add(makeZip(f, zent{name: "d/up", mode: link, body: ".."}, zent{name: "l", mode: link, body: "d/up/.."}))
	f.Add(makeZip(f, zent{name: "z", body: strings.Repeat("z", 5000), method: zip.Deflate}))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		_ = Unzip(data, filepath.Join(parent, "code"), UnzipLimits{MaxUnzippedBytes: 1 << 20, MaxFiles: 200})
		assertContained(t, parent, "code")
	})
}

// TestUnzipZipTool unpacks an archive made by Info-ZIP's zip (symlinks stored as links)
// and compares the tree with the original.
func TestUnzipZipTool(t *testing.T) {
	zipTool, err := exec.LookPath("zip")
	if err != nil {
		t.Skip("zip not installed")
	}
	src := t.TempDir()
	files := map[string]os.FileMode{"bootstrap": 0o755, "lib/a.js": 0o644, "node_modules/pkg/cli.js": 0o755}
	for name, mode := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(src, "node_modules/.bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../pkg/cli.js", filepath.Join(src, "node_modules/.bin/cli")); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "code.zip")
	cmd := exec.Command(zipTool, "-q", "-r", "-y", archive, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zip: %v\n%s", err, out)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "code")
	if err := Unzip(data, dst, UnzipLimits{}); err != nil {
		t.Fatalf("Unzip: %v", err)
	}
	if diff := cmp.Diff(tree(t, src), tree(t, dst)); diff != "" {
		t.Errorf("unpacked tree differs (-zip source +unpacked):\n%s", diff)
	}
}
