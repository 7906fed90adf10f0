// Package sched runs shoal's servers and execution environments under the
// kernel's SCHED_BATCH policy, whose tasks keep their fair share of the CPU but
// do not preempt the running task when they wake up. On the invoke path every
// hand-over between the control plane, an agent and a function is a wake-up;
// without preemption the waker finishes what it was doing, often handing over
// several invocations, before the CPU switches
// (docs/decisions/environment-scheduling.md).
//
// SHOAL_SCHED=normal keeps the kernel's usual policy for all of them.
package sched

import "os"

// OptOut is the variable that, set to "normal", keeps the usual policy.
const OptOut = "SHOAL_SCHED"

// Enabled reports whether shoal's processes and environments run under
// SCHED_BATCH (unless OptOut says "normal").
func Enabled() bool { return os.Getenv(OptOut) != "normal" }
