//go:build !linux

package sysmon

// Reexec does nothing: only `shoal up` and `shoal agent` call it, and they
// run on Linux (reexec_linux.go).
func Reexec() error { return nil }
