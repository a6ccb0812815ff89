//go:build !unix

package main

import "log/slog"

// keepMonitorAwake does nothing where there is no exec: the daemon runs with
// the runtime's default unless GODEBUG already sets schedtrace.
func keepMonitorAwake(logger *slog.Logger) {
	if !monitorAwake() {
		logger.Debug("cannot re-execute on this system; set GODEBUG=" + schedtraceSetting + " to keep the runtime monitor awake")
	}
}
