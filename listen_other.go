//go:build !linux

package socks

import "net"

// listenConfig sets keepalive on each accepted connection.
func listenConfig() net.ListenConfig {
	return net.ListenConfig{KeepAliveConfig: keepAlive}
}
