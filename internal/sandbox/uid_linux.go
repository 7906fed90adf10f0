package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The range isolated sandboxes take their user and group ids from, one id
// of their own each: a process of one sandbox can then neither signal,
// trace nor read the files of another's. The range lies above the ids of
// people, system services and systemd's dynamic and container ranges
// (which end below 1879048192 and within 2147352576–2147483647).
const (
	UIDRangeStart = 1_950_000_000
	UIDRangeSize  = 1 << 20
)

// uidLockDir holds one lock file per id in use; the lock, not the file,
// says the id is taken, so an id is free again the moment its holder ends,
// however it ends. Every shoal process of a host (the control plane and each
// agent) takes its ids here.
var uidLockDir = "/run/shoal/uid"

// uidLease is one sandbox's hold on its id.
type uidLease struct {
	id int
	f  *os.File
}

var (
	heldMu sync.Mutex
	held   = map[int]bool{} // ids this process holds
)

// leaseUID takes a free id of the range. Each process starts looking in a
// block of its own (by pid), so that processes rarely probe each other's ids.
func leaseUID() (*uidLease, error) {
	if err := os.MkdirAll(uidLockDir, 0o700); err != nil {
		return nil, fmt.Errorf("uid leases: %w", err)
	}
	start := (os.Getpid() % 64) * 1024
	for i := 0; i < UIDRangeSize; i++ {
		id := UIDRangeStart + (start+i)%UIDRangeSize
		heldMu.Lock()
		if held[id] {
			heldMu.Unlock()
			continue
		}
		held[id] = true
		heldMu.Unlock()
		f, err := os.OpenFile(filepath.Join(uidLockDir, strconv.Itoa(id)), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			release(id)
			return nil, fmt.Errorf("uid leases: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			release(id)
			continue
		}
		return &uidLease{id: id, f: f}, nil
	}
	return nil, fmt.Errorf("uid leases: all %d ids of the range are in use", UIDRangeSize)
}

func release(id int) {
	heldMu.Lock()
	delete(held, id)
	heldMu.Unlock()
}

// close gives the id back.
func (l *uidLease) close() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Close()
	l.f = nil
	release(l.id)
}
