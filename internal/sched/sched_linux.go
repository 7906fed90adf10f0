//go:build linux

package sched

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// BatchThread gives the calling OS thread the SCHED_BATCH policy, keeping its
// nice value. Threads and processes it creates afterwards inherit the policy.
func BatchThread() error {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return fmt.Errorf("sched_getattr: %w", err)
	}
	return setBatch(0, attr)
}

// BatchProcess gives every thread of the current process the SCHED_BATCH
// policy. Threads the runtime starts later are cloned from these and inherit
// it; the threads are listed again until a pass finds none left to change, so
// that one started during a pass is not missed.
func BatchProcess() error {
	for range 5 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := 0
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			attr, err := unix.SchedGetAttr(tid, 0)
			if err != nil || attr.Policy == unix.SCHED_BATCH {
				continue // exited, or done
			}
			if err := setBatch(tid, attr); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
			changed++
		}
		if changed == 0 {
			return nil
		}
	}
	return nil
}

// setBatch gives thread tid (0: the caller), whose attributes are attr, the
// SCHED_BATCH policy with the rest of attr unchanged.
func setBatch(tid int, attr *unix.SchedAttr) error {
	attr.Policy = unix.SCHED_BATCH
	attr.Flags = 0
	if err := unix.SchedSetAttr(tid, attr, 0); err != nil {
		return fmt.Errorf("sched_setattr: %w", err)
	}
	return nil
}
