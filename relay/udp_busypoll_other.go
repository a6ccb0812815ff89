//go:build !linux

package relay

import (
	"net"
	"sync/atomic"
	"time"
)

// udpWaiter exists on Linux only; elsewhere BusyPoll is ignored.
type udpWaiter struct{}

func newUDPWaiter(...*net.UDPConn) *udpWaiter { return nil }

func (*udpWaiter) wake()  {}
func (*udpWaiter) close() {}

func (a *udpAssoc) pollLoop(*udpWaiter, time.Duration, *udpBufs, *UDPResult, *UDPResult) {}

// pollLoops counts associations served by pollLoop (none here). For tests.
var pollLoops atomic.Int64
