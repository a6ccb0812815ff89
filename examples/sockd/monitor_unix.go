//go:build unix

package main

import (
	"log/slog"
	"os"
	"syscall"
)

// keepMonitorAwake re-executes the daemon with schedtraceSetting added to
// GODEBUG, unless GODEBUG already sets schedtrace. It returns only when it
// did not re-execute: nothing to do, or the exec failed (logged; the daemon
// then runs with the runtime's default).
func keepMonitorAwake(logger *slog.Logger) {
	if monitorAwake() {
		return
	}
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, withSchedtrace(os.Environ()))
	}
	logger.Warn("could not re-execute with GODEBUG="+schedtraceSetting+"; running with the runtime's default", "err", err)
}
