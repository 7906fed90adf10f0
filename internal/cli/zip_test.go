package cli

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestZipDir packages a directory as `shoal fn create --code DIR` does: the
// files with their modes, no .git directory, no links.
func TestZipDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode fs.FileMode) {
		p := filepath.Join(dir, name)
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
	write("bootstrap", 0o755)
	write("lib/data.json", 0o644)
	write(".git/HEAD", 0o644)
	if err := os.Symlink("bootstrap", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	b, err := readCode(dir)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]fs.FileMode{}
	for _, f := range zr.File {
		got[f.Name] = f.Mode().Perm()
	}
	want := map[string]fs.FileMode{"bootstrap": 0o755, "lib/data.json": 0o644}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("packaged files (-want +got):\n%s", d)
	}
}

func TestPackagedMode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     fs.FileMode
		execBits bool
		want     fs.FileMode
	}{
		{"unix executable", 0o755, true, 0o755},
		{"unix plain file", 0o644, true, 0o644},
		{"windows file", 0o666, false, 0o755},
		{"windows read-only file", 0o444, false, 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := packagedMode(tc.mode, tc.execBits); got != tc.want {
				t.Errorf("packagedMode(%v, %v) = %v, want %v", tc.mode, tc.execBits, got, tc.want)
			}
		})
	}
}
