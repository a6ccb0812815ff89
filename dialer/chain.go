package dialer

import (
	"errors"
	"fmt"

	"github.com/virgilproxy/socks"
)

// ErrEmptyChain is returned by Chain without hops.
var ErrEmptyChain = errors.New("dialer: a chain needs at least one hop")

// Chain returns a Dialer whose connections pass hops[0], then hops[1], and
// so on: the last hop's proxy connects to the destination. The result is a
// copy of the last hop whose Forward is a copy of the one before it, and
// so on down to a copy of hops[0], which keeps its own Forward. The
// caller's Dialers are not modified.
//
// Each hop is asked to connect to the next hop's ProxyAddr, so a hop that
// resolves names locally (SOCKS4, socks5://) resolves the next proxy's
// name on this side.
func Chain(hops ...*socks.Dialer) (*socks.Dialer, error) {
	if len(hops) == 0 {
		return nil, ErrEmptyChain
	}
	var prev *socks.Dialer
	for i, h := range hops {
		if h == nil {
			return nil, fmt.Errorf("dialer: hop %d of the chain is nil", i)
		}
		if h.ProxyAddr == "" {
			return nil, fmt.Errorf("dialer: hop %d of the chain has no ProxyAddr", i)
		}
		cp := *h
		if prev != nil {
			cp.Forward = prev
		}
		prev = &cp
	}
	return prev, nil
}
