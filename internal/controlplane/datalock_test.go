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

// readOnlyDir returns an existing directory that this process cannot write:
// a read-only bind mount when root (root writes through permissions), else
// a directory without write permission.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		return dir
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount a read-only directory: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot make the bind mount read-only: %v", err)
	}
	return dir
}

// TestUnwritableDataDir: an existing data directory shoal cannot write fails
// Start at once, with the cause in the error itself.
func TestUnwritableDataDir(t *testing.T) {
	dir := readOnlyDir(t)
	_, err := Start(context.Background(), Config{DataDir: dir, Listen: "127.0.0.1:0"}, Deps{})
	if err == nil {
		t.Fatal("Start on an unwritable data directory succeeded")
	}
	if !strings.Contains(err.Error(), dir) ||
		!(errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) {
		t.Fatalf("Start: %v; want the directory and the cause (read-only or permission denied)", err)
	}
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
