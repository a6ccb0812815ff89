package dialer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/internal/addrmatch"
)

// AddrPattern is an address pattern in Dante's forms: "0/0" (the zero
// value also matches everything), "10.0.0.0/8", "10.0.0.0/255.0.0.0",
// "2001:db8::/32", a host name, or ".example.com" (the domain and every
// name under it). See [ParseAddrPattern].
type AddrPattern = addrmatch.Addr

// PortPattern is a port pattern in Dante's forms: "= 80", "gt 1023",
// "1-1024" (the zero value matches every port). See [ParsePortPattern].
type PortPattern = addrmatch.Port

// ParseAddrPattern parses an address pattern. A bare IP address needs a
// mask ("10.0.0.1/32"), as in Dante; interface names are not supported.
func ParseAddrPattern(s string) (AddrPattern, error) { return addrmatch.ParseAddr(s) }

// ParsePortPattern parses a port pattern from an operator ("=", "eq",
// "!=", "ne", "<", "lt", ">", "gt", "<=", "le", ">=", "ge", or "" for "=")
// and a value (a number, a service name, or a range "A-B" with no
// operator).
func ParsePortPattern(op, value string) (PortPattern, error) { return addrmatch.ParsePort(op, value) }

// Defaults of a Table's zero-valued fields, as in Dante.
const (
	DefaultMaxFail   = 1               // route.maxfail
	DefaultBadExpire = 5 * time.Minute // route.badexpire
)

// ErrNoRoute is wrapped by the error of a dial that no route matches.
var ErrNoRoute = errors.New("dialer: no route")

// Route is one route of a Table: which requests it carries, and how.
type Route struct {
	// From matches the client's address, when the dial is made for a
	// socks.Server's client (socks.RequestFromContext). A route with a
	// From other than any does not match a dial made without one.
	From AddrPattern
	// FromPort matches the client's port.
	FromPort PortPattern
	// To and ToPort match the destination. A destination given as a name
	// matches prefixes only when Resolver is set on the Table.
	To     AddrPattern
	ToPort PortPattern
	// Users, when not empty, restricts the route to requests whose client
	// authenticated as one of these users (Identity.User of the
	// socks.Request in the dial's context). Dante cannot do this.
	Users []string
	// Via lists the ways to reach the route's gateway, tried in order: in
	// Dante's terms one Dialer per protocol of proxyprotocol:. The
	// Dialers must not change while the Table is in use.
	Via []*socks.Dialer
	// Direct makes the route connect without a proxy (via: direct),
	// through the Table's Direct dialer. Via is ignored then.
	Direct bool
}

// Table is a route table: it implements proxy.ContextDialer by choosing
// the first route that matches the request and whose proxy answers, in
// Dante's model (sockd.conf and socks.conf route statements).
//
// A dial tries the matching routes in order, skipping routes marked bad,
// and returns the first connection made. Within a route, the Via dialers
// are tried in order. A proxy that answers with a refusal (a
// *socks.ReplyError: its rules, the destination unreachable from there,
// bad credentials) ends the dial with that error, as is, and does not
// count against the route: the route works, the request does not. Any
// other failure (the proxy unreachable, or not speaking the protocol)
// counts: after MaxFail failures in a row the route is marked bad for
// BadExpire, and a success clears the count. A direct route's error is the
// destination's own answer, so it is returned at once and never counts.
//
// When every matching route that is not bad has failed (or all are bad),
// the bad ones are tried too, in order, rather than failing without
// trying: a bad mark is a guess about the past, and Dante's alternative
// (failing until the mark expires) turns a short outage of every gateway
// into a long one. When no route matches, the error wraps ErrNoRoute
// ("no route to host:port"); there is no fallback to direct, as in Dante
// since 1.4.0.
//
// A Table is safe for concurrent use. Its fields must not change after
// the first dial.
type Table struct {
	// Routes, first match wins.
	Routes []Route
	// MaxFail is the number of failures in a row that marks a route bad
	// (route.maxfail); DefaultMaxFail if zero or less.
	MaxFail int
	// BadExpire is how long a route stays bad (route.badexpire);
	// DefaultBadExpire if zero or less.
	BadExpire time.Duration
	// Direct dials for direct routes; a net.Dialer if nil.
	Direct proxy.ContextDialer
	// Resolver, if set, lets address patterns resolve names as Dante does
	// (a prefix matching a destination name, a name matching an IP). nil
	// means patterns never cause a DNS lookup. A *net.Resolver fits.
	Resolver addrmatch.Resolver
	// Now returns the current time; time.Now if nil. For tests.
	Now func() time.Time

	mu    sync.Mutex
	state []routeState
}

type routeState struct {
	fails    int
	badUntil time.Time
}

var (
	_ proxy.Dialer        = (*Table)(nil)
	_ proxy.ContextDialer = (*Table)(nil)
)

// Dial connects to address through the table.
func (t *Table) Dial(network, address string) (net.Conn, error) {
	return t.DialContext(context.Background(), network, address)
}

// DialContext connects to address through the first matching route whose
// proxy answers; see Table.
func (t *Table) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	dest, err := socks.ParseAddr(address)
	if err != nil {
		return nil, err
	}
	req, _ := socks.RequestFromContext(ctx)
	var good, bad []int
	now := t.now()
	for i := range t.Routes {
		ok, err := t.matches(ctx, &t.Routes[i], req, dest)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if t.isBad(i, now) {
			bad = append(bad, i)
		} else {
			good = append(good, i)
		}
	}
	if len(good)+len(bad) == 0 {
		return nil, fmt.Errorf("%w to %s", ErrNoRoute, dest)
	}
	var errs []error
	for _, i := range append(good, bad...) {
		c, err := t.dialRoute(ctx, i, network, address)
		if err == nil {
			return c, nil
		}
		var re *socks.ReplyError
		if errors.As(err, &re) || ctx.Err() != nil || t.Routes[i].Direct {
			return nil, err
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("dialer: every route to %s failed: %w", dest, errors.Join(errs...))
}

func (t *Table) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Table) maxFail() int {
	if t.MaxFail > 0 {
		return t.MaxFail
	}
	return DefaultMaxFail
}

func (t *Table) badExpire() time.Duration {
	if t.BadExpire > 0 {
		return t.BadExpire
	}
	return DefaultBadExpire
}

// isBad reports whether route i is marked bad at now; an expired mark is
// cleared.
func (t *Table) isBad(i int, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i >= len(t.state) {
		return false
	}
	s := &t.state[i]
	if s.badUntil.IsZero() {
		return false
	}
	if !now.Before(s.badUntil) {
		*s = routeState{}
		return false
	}
	return true
}

// record notes the outcome of a dial through route i.
func (t *Table) record(i int, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !failed {
		if i < len(t.state) {
			t.state[i] = routeState{}
		}
		return
	}
	if i >= len(t.state) {
		t.state = append(t.state, make([]routeState, i+1-len(t.state))...)
	}
	s := &t.state[i]
	s.fails++
	if s.fails >= t.maxFail() {
		s.badUntil = t.now().Add(t.badExpire())
	}
}

// Bad reports whether route i is marked bad now.
func (t *Table) Bad(i int) bool { return t.isBad(i, t.now()) }

// dialRoute tries route i's ways in order.
func (t *Table) dialRoute(ctx context.Context, i int, network, address string) (net.Conn, error) {
	r := &t.Routes[i]
	if r.Direct {
		d := t.Direct
		if d == nil {
			d = &net.Dialer{}
		}
		return d.DialContext(ctx, network, address)
	}
	if len(r.Via) == 0 {
		return nil, fmt.Errorf("dialer: route %d has no via and is not direct", i+1)
	}
	var errs []error
	for _, d := range r.Via {
		c, err := d.DialContext(ctx, network, address)
		if err == nil {
			t.record(i, false)
			return c, nil
		}
		var re *socks.ReplyError
		if errors.As(err, &re) || ctx.Err() != nil {
			// The proxy answered (or the caller gave up): not the
			// route's fault.
			return nil, err
		}
		errs = append(errs, err)
	}
	t.record(i, true)
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// matches reports whether route r carries a request for dest, made for
// req (nil when the dial is not made for a server's client).
func (t *Table) matches(ctx context.Context, r *Route, req *socks.Request, dest socks.Addr) (bool, error) {
	if !r.ToPort.Match(dest.Port) {
		return false, nil
	}
	if ok, err := r.To.MatchResolve(ctx, t.Resolver, dest.Name, dest.IP); err != nil || !ok {
		// A destination name that does not resolve matches no prefix.
		return false, nil
	}
	if len(r.Users) > 0 {
		if req == nil || req.Identity == nil || req.Identity.User == "" || !slices.Contains(r.Users, req.Identity.User) {
			return false, nil
		}
	}
	if r.From.Kind() == addrmatch.KindAny && r.FromPort.Op == addrmatch.PortAny {
		return true, nil
	}
	if req == nil || req.Client == nil {
		return false, nil
	}
	client, ok := addrPortOf(req.Client)
	if !ok || !r.FromPort.Match(client.Port()) {
		return false, nil
	}
	ok, err := r.From.MatchResolve(ctx, t.Resolver, "", client.Addr())
	return ok && err == nil, nil
}

func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	case socks.Addr:
		return a.AddrPort()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}
