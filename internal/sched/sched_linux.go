//go:build linux

package sched

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// BatchThread gives the calling OS thread the SCHED_BATCH policy, keeping its
// nice value. Threads and processes it creates afterwards inherit the policy.
func BatchThread() error { return batch(0) }

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
			if err != nil {
				continue // the thread has exited
			}
			if attr.Policy == unix.SCHED_BATCH {
				continue
			}
			if err := batch(tid); err != nil {
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

func batch(tid int) error {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return fmt.Errorf("sched_getattr: %w", err)
	}
	attr.Policy = unix.SCHED_BATCH
	attr.Flags = 0
	if err := unix.SchedSetAttr(tid, attr, 0); err != nil {
		return fmt.Errorf("sched_setattr: %w", err)
	}
	return nil
}
