//go:build !unix

package main

import (
	"syscall"
	"testing"
)

// signalSelf: a process cannot send itself SIGHUP or SIGTERM here, so the
// test stops at the first signal.
func signalSelf(t *testing.T, sig syscall.Signal) {
	t.Skipf("sending %v to itself needs a Unix system", sig)
}
