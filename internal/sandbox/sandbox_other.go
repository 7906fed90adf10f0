//go:build !linux

package sandbox

import (
	"fmt"
	"os/exec"
	"runtime"
)

// platformState is empty: on this system a sandbox is a plain process.
type platformState struct{}

func (s *Sandbox) setup() error {
	s.limitedf("no cgroups or namespaces on %s: running a plain process", runtime.GOOS)
	return nil
}

// Start starts cmd as a plain child process. It may be called once.
func (s *Sandbox) Start(cmd *exec.Cmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return ErrStarted
	}
	s.started = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	s.cmd = cmd
	return nil
}

// Kill kills the started process (only the leader on this system).
func (s *Sandbox) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killLocked()
}

func (s *Sandbox) killLocked() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	if err := s.cmd.Process.Kill(); err != nil && !isProcessDone(err) {
		return fmt.Errorf("kill: %w", err)
	}
	return nil
}

// Close kills the process and removes the sandbox's own tmp dir. It is idempotent.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.killLocked()
	s.cleanupTmp()
	return err
}

// uidLease is Linux only.
type uidLease struct{}

func (*uidLease) close() {}
