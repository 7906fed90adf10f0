package controlplane

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// readOnly makes the existing directory dir one that this process cannot
// write: a read-only bind mount when root (root writes through
// permissions), else no write permission.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		return
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount a read-only directory: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot make the bind mount read-only: %v", err)
	}
}

// TestUnwritableDataDir: a data directory shoal cannot write, or cannot
// create, or one whose parts it cannot write, fails Start at once with the
// cause in the error itself (before, a read-only bus store waited 10 s for
// "bus: server not ready in time").
func TestUnwritableDataDir(t *testing.T) {
	cases := []struct {
		name string
		// prepare returns the data directory and the path the error names.
		prepare func(t *testing.T, root string) (data, named string)
		cause   []error
	}{
		{"read-only directory", func(t *testing.T, root string) (string, string) {
			readOnly(t, root)
			return root, root
		}, []error{unix.EROFS, unix.EACCES, unix.EPERM}},
		{"parent is a file", func(t *testing.T, root string) (string, string) {
			file := filepath.Join(root, "file")
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(file, "data"), filepath.Join(file, "data")
		}, []error{unix.ENOTDIR}},
		{"read-only bus store", func(t *testing.T, root string) (string, string) {
			return root, mkReadOnly(t, filepath.Join(root, "nats", "jetstream"), filepath.Join(root, "nats"))
		}, []error{unix.EROFS, unix.EACCES, unix.EPERM}},
		{"read-only code cache", func(t *testing.T, root string) (string, string) {
			return root, mkReadOnly(t, filepath.Join(root, "code"), filepath.Join(root, "code"))
		}, []error{unix.EROFS, unix.EACCES, unix.EPERM}},
		{"read-only fleet", func(t *testing.T, root string) (string, string) {
			return root, mkReadOnly(t, filepath.Join(root, "fleet"), filepath.Join(root, "fleet"))
		}, []error{unix.EROFS, unix.EACCES, unix.EPERM}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			data, named := c.prepare(t, root)
			s, err := Start(context.Background(), Config{DataDir: data, Listen: "127.0.0.1:0"}, Deps{})
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded")
			}
			found := false
			for _, cause := range c.cause {
				found = found || errors.Is(err, cause)
			}
			if !strings.Contains(err.Error(), named) || !found {
				t.Fatalf("Start: %v; want %s and the cause (%v) in the error", err, named, c.cause)
			}
		})
	}
}

// mkReadOnly creates mk and makes dir (mk or one of its parents) read-only;
// it returns dir.
func mkReadOnly(t *testing.T, mk, dir string) string {
	t.Helper()
	if err := os.MkdirAll(mk, 0o755); err != nil {
		t.Fatal(err)
	}
	readOnly(t, dir)
	return dir
}

// TestDataDirLock: a second lock on a held data directory fails with
// ErrDataDirInUse and names the holder's pid; releasing frees it.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	l, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description conflicts with the first, even in
	// this process, as another process's would.
	_, err = lockDataDir(dir)
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: %v, want ErrDataDirInUse naming pid %d", err, os.Getpid())
	}
	l.release()
	l2, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.release()
}
