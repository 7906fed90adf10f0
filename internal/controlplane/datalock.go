package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile is the file in the data directory that the running shoal holds
// an exclusive lock on, with its pid inside.
const lockFile = "shoal.lock"

// ErrDataDirInUse is wrapped by Start's error when another shoal holds the
// data directory.
var ErrDataDirInUse = errors.New("data directory in use")

// dataLock is the exclusive hold of one shoal on its data directory. Only
// one shoal may open a data directory at a time: two would share one
// JetStream store, one fleet and one usage journal.
type dataLock struct{ f *os.File }

// lockDataDir creates dir if needed and takes its lock before anything else
// in it is opened. When another process holds it, the error names its pid.
// The lock is released when the process ends, however it ends.
func lockDataDir(dir string) (*dataLock, error) {
	// Only shoal reads its data: functions' code and configuration, the bus's
	// store, the credentials. Environments run as other users.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := flock(f); err != nil {
		if !lockBusy(err) {
			f.Close()
			return nil, fmt.Errorf("data directory %s: lock %s: %w", dir, lockFile, err)
		}
		b, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(b))
		if _, perr := strconv.Atoi(holder); perr != nil || holder == "" {
			holder = "unknown"
		}
		return nil, fmt.Errorf("%w: %s is held by another shoal (pid %s); stop it or choose another --data",
			ErrDataDirInUse, dir, holder)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("data directory %s: %w", dir, err)
		}
	} else {
		f.Close()
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := subdirsWritable(dir); err != nil {
		_ = funlock(f)
		f.Close()
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return &dataLock{f: f}, nil
}

// subdirsWritable checks that every directory shoal keeps in dir (the bus's
// store, the journal, the code cache, the fleet…) takes a new file: one that
// does not would fail later, some only at the first invocation, and the
// bus's only after a wait, with its cause in a log line.
func subdirsWritable(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		f, err := os.CreateTemp(filepath.Join(dir, e.Name()), ".writable-*")
		if err != nil {
			return err
		}
		f.Close()
		if err := os.Remove(f.Name()); err != nil {
			return err
		}
	}
	return nil
}

// release gives the data directory up.
func (l *dataLock) release() {
	if l != nil && l.f != nil {
		_ = funlock(l.f)
		l.f.Close()
		l.f = nil
	}
}
