//go:build unix

package main

import (
	"os"
	"syscall"
	"testing"
)

// signalSelf sends sig to the test process, where run is listening.
func signalSelf(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}
