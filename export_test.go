package socks

import "time"

// SetDeepPoolIdleTime sets how long s's pool goroutines stay idle before
// they exit; call it before s serves. For tests.
func SetDeepPoolIdleTime(s *Server, d time.Duration) { s.deep.idleTime = d }
