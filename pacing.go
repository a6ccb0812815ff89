package socks

import (
	"syscall"

	"github.com/virgilproxy/socks/internal/pacing"
)

// NoLoopbackPacing is a net.Dialer.Control or net.ListenConfig.Control
// function that keeps TCP pacing off connections that never leave the
// host. When the socket's address (the remote address for a dial, the
// local one for a listener) is a loopback address and the socket's
// congestion control is BBR, which paces every send with a timer, it
// switches the socket to reno, which does not pace; connections accepted
// from such a listener inherit it. Any other socket keeps the congestion
// control the system gave it. It is best effort: an error leaves the
// socket as it was and is not returned.
//
// Pacing spreads a window of segments over a round trip so that a
// bottleneck queue on the path does not overflow; on loopback there is
// no such queue, and arming the pacing timer for sends costs CPU, most
// of all in a virtual machine, where programming a timer is a hypervisor
// call. A relay also sends each connection's segments from two CPUs (its
// own, and the one where the peer's acknowledgements arrive), and on
// loopback those leave in different per-CPU queues, so segments arrive
// out of order and the sender retransmits them for nothing; pacing, which
// holds segments back for the timer or the acknowledgement side to send,
// made that more than ten times as frequent (thousands of spurious
// retransmits per 4 GiB instead of a couple of hundred). See the
// Performance section of the package documentation for what it is worth.
//
// The congestion control is chosen when the connection is established,
// so it must be set before: Listen, the default dialer of a Server (to
// its targets) and of a Dialer (to its proxy), and msproxy.Server's
// default dialer and listen config call NoLoopbackPacing; a listener on a
// wildcard address cannot use it for its loopback clients.
//
// On systems other than Linux it does nothing.
func NoLoopbackPacing(network, address string, c syscall.RawConn) error {
	return pacing.OffOnLoopback(network, address, c)
}
