package socks

import (
	"net"
	"time"
)

// SetDeepPoolIdleTime sets how long s's pool goroutines stay idle before
// they exit; call it before s serves. For tests.
func SetDeepPoolIdleTime(s *Server, d time.Duration) { s.deep.idleTime = d }

// DefaultDialer is the dialer a Server uses when its Dialer is nil.
func DefaultDialer() *net.Dialer { return defaultDialer }
