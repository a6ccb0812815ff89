package socks

import (
	"net"
	"syscall"
)

// listenConfig turns keepalive on for the listening socket itself: on
// Linux an accepted socket inherits SO_KEEPALIVE (and starts its keepalive
// timer) from its listener, which saves a setsockopt per connection over
// setting it on each accepted one. A loopback listener also gets
// NoLoopbackPacing, which its connections inherit the same way.
func listenConfig() net.ListenConfig {
	return net.ListenConfig{
		KeepAlive: -1, // inherited, see above
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
			}); err != nil {
				return err
			}
			if serr != nil {
				return serr
			}
			return NoLoopbackPacing(network, address, c)
		},
	}
}
