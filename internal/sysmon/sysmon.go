// Package sysmon keeps the Go runtime's system monitor from sleeping deeply in
// shoal's own server processes: the control plane (`shoal up`) and the agents.
//
// Between invocations these processes go idle. The runtime's monitor thread
// then sleeps until the next system call wakes it, and once woken it polls
// every 20 µs until it has seen 50 quiet polls. A process that serves a
// request every few hundred microseconds therefore pays, for every request, a
// futex wake-up of the monitor and a train of 20 µs sleeps, each a thread
// switch. Where thread switches are expensive (virtual machines) that costs
// more than the work: on the project machine the monitor was a sixth to a
// fifth of each process's CPU, and the agent's CPU per warm invocation fell by
// 30 % without it (bench/notes/2026-11-26-invoke.md).
//
// GODEBUG=schedtrace is the runtime's only switch for that deep sleep: while a
// trace period is set, the monitor never waits to be woken and backs off to
// one poll every 10 ms while it has nothing to take back from a system call.
// The period set here is the longest the runtime accepts (2^31-1 ms, about
// 24.8 days), so the trace itself prints one line to standard error at most
// that often (and once at start on a machine up for longer than that). A
// fatal error also prints the scheduler's state, before the usual trace.
//
// The setting is made by re-executing the process (GODEBUG is read only at
// start); user functions never see it. A GODEBUG that already sets
// schedtrace is left alone, and SHOAL_SYSMON=default turns this off.
package sysmon

import (
	"strings"
)

// Setting is what Environ adds to GODEBUG.
const Setting = "schedtrace=2147483647"

// OptOut is the variable that, set to "default", keeps Go's own behaviour.
const OptOut = "SHOAL_SYSMON"

// Environ returns env with Setting added to its GODEBUG, and whether it
// changed anything. It leaves env as it is when GODEBUG already sets
// schedtrace or when OptOut is "default".
func Environ(env []string) ([]string, bool) {
	godebug, at := "", -1
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case OptOut:
			if v == "default" {
				return env, false
			}
		case "GODEBUG":
			if at < 0 { // the runtime reads the first
				godebug, at = v, i
			}
		}
	}
	for _, field := range strings.Split(godebug, ",") {
		if k, _, _ := strings.Cut(field, "="); strings.TrimSpace(k) == "schedtrace" {
			return env, false
		}
	}
	out := append([]string(nil), env...)
	if at < 0 {
		return append(out, "GODEBUG="+Setting), true
	}
	if godebug == "" {
		out[at] = "GODEBUG=" + Setting
	} else {
		out[at] = "GODEBUG=" + godebug + "," + Setting
	}
	return out, true
}
