//go:build !linux

// Package pacing keeps TCP pacing off connections that never leave the
// host; socks.NoLoopbackPacing documents why and what it is worth.
package pacing

import "syscall"

// OffOnLoopback is a net.Dialer.Control or net.ListenConfig.Control
// function that keeps pacing off loopback sockets on Linux; elsewhere it
// does nothing.
func OffOnLoopback(network, address string, c syscall.RawConn) error {
	return nil
}
