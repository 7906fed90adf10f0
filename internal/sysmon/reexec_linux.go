package sysmon

import (
	"os"
	"syscall"
)

// Reexec replaces the process with itself, same arguments, under
// Environ(os.Environ()) when that adds the setting. It returns nil when there
// is nothing to do, and an error (the process going on untuned) when the
// executable cannot be found or run again.
func Reexec() error {
	env, changed := Environ(os.Environ())
	if !changed {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(exe, os.Args, env)
}
