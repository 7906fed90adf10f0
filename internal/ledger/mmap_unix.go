//go:build unix && !linux

package ledger

import (
	"os"
	"syscall"
)

// allocate gives f size bytes of disk blocks by writing zeros (fallocate is
// Linux's), so that a full disk is an error, never a sparse file.
func allocate(f *os.File, size int64) error { return zeroFill(f, size) }

// mapSegment maps size bytes of f shared into memory; the pages fault in as
// the journal fills them (Linux populates them up front, mmap_linux.go).
func mapSegment(f *os.File, size int64) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

func unmapSegment(mem []byte) error { return syscall.Munmap(mem) }
