package relay

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// errNoAddress: the resolver answered with no usable address.
var errNoAddress = errors.New("relay: no address for host")

// udpResolver resolves the domain names of one association's client
// datagrams through a small cache. It is used by the client loop only.
type udpResolver struct {
	resolve func(ctx context.Context, host string) (netip.Addr, error)
	network string // for net.DefaultResolver: "ip4", "ip6" or "ip"
	cache   map[string]udpCacheEntry
}

type udpCacheEntry struct {
	ip      netip.Addr // invalid: the name did not resolve
	expires int64      // udpNanotime
}

func (r *udpResolver) init(resolve func(context.Context, string) (netip.Addr, error), remote *net.UDPConn) {
	r.resolve = resolve
	r.network = "ip"
	if la, ok := remote.LocalAddr().(*net.UDPAddr); ok {
		ip := la.AddrPort().Addr()
		switch {
		case ip.Is4() || ip.Is4In6():
			r.network = "ip4"
		case !ip.IsUnspecified():
			r.network = "ip6" // bound to one IPv6 address: IPv4 is unreachable
		}
	}
}

// lookup returns the address of name, from the cache when it is fresh.
func (r *udpResolver) lookup(ctx context.Context, name string) (netip.Addr, bool) {
	now := udpNanotime()
	if e, ok := r.cache[name]; ok && now < e.expires {
		return e.ip, e.ip.IsValid()
	}
	qctx, cancel := context.WithTimeout(ctx, udpResolveLimit)
	ip, err := r.query(qctx, name)
	cancel()
	if err != nil && ctx.Err() != nil {
		return netip.Addr{}, false // the association is ending: do not cache
	}
	ttl := udpCacheTTL
	if err != nil || !ip.IsValid() {
		ip, ttl = netip.Addr{}, udpNegativeTTL
	}
	if r.cache == nil {
		r.cache = make(map[string]udpCacheEntry, udpCacheSize)
	}
	if _, ok := r.cache[name]; !ok && len(r.cache) >= udpCacheSize {
		r.evict(now)
	}
	r.cache[name] = udpCacheEntry{ip: ip, expires: now + int64(ttl)}
	return ip, ip.IsValid()
}

// evict removes the expired entries, or, when none has expired, one
// entry (Go's map iteration order makes it an arbitrary one).
func (r *udpResolver) evict(now int64) {
	removed := false
	for k, e := range r.cache {
		if now >= e.expires {
			delete(r.cache, k)
			removed = true
		}
	}
	if removed {
		return
	}
	for k := range r.cache {
		delete(r.cache, k)
		return
	}
}

func (r *udpResolver) query(ctx context.Context, name string) (netip.Addr, error) {
	if r.resolve != nil {
		return r.resolve(ctx, name)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, r.network, name)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, errNoAddress
	}
	return ips[0], nil
}
