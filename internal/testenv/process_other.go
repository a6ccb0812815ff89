//go:build !linux

package testenv

import (
	"os"
	"syscall"
)

// processAttr: elsewhere a server gets no attributes of its own; the
// third-party servers these tests run are Debian packages, so the tests
// that start them run on Linux.
func processAttr() *syscall.SysProcAttr { return nil }

// killTree kills p.
func killTree(p *os.Process) { _ = p.Kill() }
