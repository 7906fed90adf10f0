package ledger

import (
	"errors"
	"os"
	"syscall"
)

// allocate gives f size bytes of disk blocks. Where the file system has no
// fallocate it writes zeros; either way a full disk is an error, never a
// sparse file.
func allocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if err == nil || !errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.ENOSYS) {
		return err
	}
	return zeroFill(f, size)
}

// mapSegment maps size bytes of f shared into memory, its pages faulted in
// now rather than one at a time on the invoke path.
func mapSegment(f *os.File, size int64) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_SHARED|syscall.MAP_POPULATE)
}

func unmapSegment(mem []byte) error { return syscall.Munmap(mem) }
