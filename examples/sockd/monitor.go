package main

import (
	"os"
	"strings"
)

// The Go runtime's monitor thread (sysmon) sleeps deeply whenever every
// processor is idle, and the next system call wakes it. A proxy under light
// load is idle many times per connection: it waits for the client, then for
// the target, then for the client again. Each time work resumes, its first
// system call wakes the monitor, which then runs every 20 µs until the
// process is idle again. On the proxy's core it preempts the thread that is
// serving, and it takes the processor away from a thread in a system call
// longer than one of its ticks, so that another thread has to be woken to
// carry on. With the daemon pinned to one core and one client at a time,
// that was 4 of the 11 context switches per connection and a fifth to a
// quarter of the daemon's CPU time (socksbench's rate scenario with one
// worker).
//
// The runtime has no setting for this but one: with GODEBUG's schedtrace
// set, the monitor never sleeps deeply (it must stay up to print the trace)
// and instead backs off to one run every 10 ms while there is nothing for it
// to do. schedtraceSetting asks for a trace once per 2^31-1 ms, about 24.8
// days, the longest period the runtime accepts. Side effects: one
// "SCHED ..." line on standard error per period (the first one at start if
// the machine has been up longer than that), a scheduler dump added to the
// output of a fatal runtime error, and about 100 wake-ups a second while the
// daemon is idle, against none.
//
// GODEBUG is read once, when the runtime starts, so keepMonitorAwake
// re-executes the daemon with it set (exec, so the process ID stays).
const schedtraceSetting = "schedtrace=2147483647"

// monitorAwake reports whether GODEBUG sets schedtrace, by us or by the
// user (whose value is then left alone).
func monitorAwake() bool {
	return godebugHas(os.Getenv("GODEBUG"), "schedtrace")
}

// godebugHas reports whether the comma-separated GODEBUG value sets key to
// something other than 0.
func godebugHas(godebug, key string) bool {
	set := false
	for _, kv := range strings.Split(godebug, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && k == key {
			set = v != "0" && v != "" // the last setting wins, as in the runtime
		}
	}
	return set
}

// withSchedtrace returns environ with schedtraceSetting added to GODEBUG.
func withSchedtrace(environ []string) []string {
	out := make([]string, 0, len(environ)+1)
	godebug := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			godebug = v
			continue
		}
		out = append(out, kv)
	}
	if godebug != "" {
		godebug += ","
	}
	return append(out, "GODEBUG="+godebug+schedtraceSetting)
}
