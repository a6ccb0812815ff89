//go:build !linux

package socks

import "syscall"

// NoLoopbackPacing is a net.Dialer.Control or net.ListenConfig.Control
// function that keeps TCP pacing off loopback connections on Linux (see
// the Linux documentation); elsewhere it does nothing.
func NoLoopbackPacing(network, address string, c syscall.RawConn) error {
	return nil
}
