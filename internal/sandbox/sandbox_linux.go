//go:build linux

package sandbox

import (
	"fmt"
	"os/exec"
	"syscall"
)

type platformState struct{}

func (s *Sandbox) setup() error {
	s.limitedf("isolation not implemented yet")
	return nil
}

// Start starts cmd in the sandbox. It may be called once.
func (s *Sandbox) Start(cmd *exec.Cmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return ErrStarted
	}
	s.started = true
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	s.cmd = cmd
	return nil
}

// Kill kills every process of the sandbox.
func (s *Sandbox) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killLocked()
}

func (s *Sandbox) killLocked() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	if err := s.cmd.Process.Kill(); err != nil && !isProcessDone(err) {
		return fmt.Errorf("kill: %w", err)
	}
	return nil
}

// Close kills the sandbox's processes and removes what New created. It is idempotent.
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
