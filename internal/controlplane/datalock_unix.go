//go:build unix

package controlplane

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

func flock(f *os.File) error   { return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) }
func funlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// lockBusy reports whether flock failed because another process holds the lock.
func lockBusy(err error) bool { return errors.Is(err, unix.EWOULDBLOCK) }
