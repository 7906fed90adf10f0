package sandbox

import (
	"bytes"
	"strconv"
	"sync"
	"syscall"
)

// statFile is a cgroup file read again and again (cpuacct.usage, cpu.stat):
// opened once, read with one pread(2) per reading instead of
// open/read/read/close.
//
// Concurrency: mu guards fd; readers share it, close takes it alone so that
// no reader uses a descriptor number after it is closed and reused.
type statFile struct {
	path string

	mu     sync.RWMutex
	fd     int // -1 until opened, or after close
	opened bool
}

func newStatFile(path string) *statFile { return &statFile{path: path, fd: -1} }

// read returns the file's contents (at most 1 KB) in buf, or nil.
func (f *statFile) read(buf []byte) []byte {
	f.mu.RLock()
	if !f.opened {
		f.mu.RUnlock()
		f.mu.Lock()
		if !f.opened {
			f.opened = true
			if fd, err := syscall.Open(f.path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil {
				f.fd = fd
			}
		}
		f.mu.Unlock()
		f.mu.RLock()
	}
	defer f.mu.RUnlock()
	if f.fd < 0 {
		return nil
	}
	n, err := syscall.Pread(f.fd, buf, 0)
	if err != nil || n <= 0 {
		return nil
	}
	return buf[:n]
}

// uint reads the file as one decimal number.
func (f *statFile) uint() uint64 {
	var buf [64]byte
	v, _ := strconv.ParseUint(string(bytes.TrimSpace(f.read(buf[:]))), 10, 64)
	return v
}

// key reads the value of "key value" line of a flat-keyed file.
func (f *statFile) key(key string) uint64 {
	var buf [1024]byte
	b := f.read(buf[:])
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(line, []byte{' '})
		if ok && string(k) == key {
			n, _ := strconv.ParseUint(string(v), 10, 64)
			return n
		}
	}
	return 0
}

// close closes the descriptor; later reads return nothing.
func (f *statFile) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd >= 0 {
		_ = syscall.Close(f.fd)
	}
	f.fd, f.opened = -1, true
}
