package scratch

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func newTestPool(t *testing.T) *Pool {
	t.Helper()
	if err := supported(); err != nil {
		t.Skipf("no scratch volumes here: %v", err)
	}
	p, err := NewPool(Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestVolumeIsSizedAndPrivate: a volume is empty, holds what fits in its
// size and no more (ENOSPC, not a kill), and leaves nothing behind.
func TestVolumeIsSizedAndPrivate(t *testing.T) {
	p := newTestPool(t)
	v, err := p.Take(16)
	if err != nil {
		t.Fatal(err)
	}
	if v.SizeMB() != 16 {
		t.Fatalf("size %d MB", v.SizeMB())
	}
	entries, err := os.ReadDir(v.Dir())
	if err != nil || len(entries) != 0 {
		t.Fatalf("a new volume holds %v (%v), want nothing", entries, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(v.Dir(), &st); err != nil {
		t.Fatal(err)
	}
	if total := int64(st.Blocks) * st.Bsize; total > 16<<20 || total < 12<<20 {
		t.Fatalf("the volume offers %d bytes, want about 16 MiB", total)
	}
	f, err := os.Create(filepath.Join(v.Dir(), "big"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{'x'}, 1<<20)
	written := 0
	for ; written < 32; written++ {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) || written < 8 {
		t.Fatalf("after %d MiB: %v, want ENOSPC after about 16 MiB", written, err)
	}
	dir := v.Dir()
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("mount point left after Close: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "*.img")); len(left) > 1 {
		// One ready DefaultMB volume may be there; this one's image is not.
		for _, l := range left {
			if l == dir+".img" {
				t.Fatalf("image %s left after Close", l)
			}
		}
	}
}

// TestPoolKeepsOneReady: the default size is prepared ahead of demand.
func TestPoolKeepsOneReady(t *testing.T) {
	p := newTestPool(t)
	p.wg.Wait()
	p.mu.Lock()
	n := len(p.ready[DefaultMB])
	p.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d volumes of %d MB ready, want 2", n, DefaultMB)
	}
	v, err := p.Take(DefaultMB)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.SizeMB() != DefaultMB {
		t.Fatalf("size %d", v.SizeMB())
	}
}
