//go:build !linux

package sched

// BatchThread does nothing: SCHED_BATCH is Linux's.
func BatchThread() error { return nil }

// BatchProcess does nothing: SCHED_BATCH is Linux's.
func BatchProcess() error { return nil }
