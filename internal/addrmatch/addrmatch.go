// Package addrmatch matches destinations and clients against address and
// port patterns written in Dante's forms, for route tables now and for
// socks-rules later.
//
// An [Addr] is one of: any address (the zero value, or "0/0" in any
// family), an IP prefix ("10.0.0.0/8", "10.0.0.0/255.0.0.0",
// "2001:db8::/32"; a mask is required, as in Dante, so "10.0.0.1" must be
// written "10.0.0.1/32"), a host name ("www.example.com", compared without
// regard to case), or a domain (".example.com", which matches
// "example.com" and every name under it). Interface names (Dante's "eth0",
// "lo") are recognised and rejected with [ErrInterface]: this package does
// not enumerate interfaces.
//
// A [Port] is any port (the zero value), a comparison ("= 80", "ne 25",
// "gt 1023", ...), or an inclusive range ("1-1024"). Service names resolve
// through a small built-in table, then net.LookupPort.
//
// Matching takes the request's parts (name string, ip netip.Addr, port
// uint16) instead of a type of the root package, so the package stays a
// leaf. Without a [Resolver], matching never touches DNS: a prefix never
// matches a name, a host name matches only the same name, and a domain
// never matches an IP. Dante resolves in these cases (lib/addressmatch.c);
// pass a Resolver (a *net.Resolver fits) to [Addr.MatchResolve] to do the
// same: a prefix matches a name when any of the name's addresses is inside
// it, a rule name matches an IP when the name resolves to it, a rule name
// matches another name when their address sets intersect, and a domain
// matches an IP whose reverse-DNS name is under the domain.
package addrmatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Sentinel errors, wrapped by every parse error.
var (
	// ErrInvalidAddr is wrapped by every error ParseAddr returns.
	ErrInvalidAddr = errors.New("addrmatch: invalid address")
	// ErrInterface is wrapped (with ErrInvalidAddr) when the address is
	// the name of a network interface, which is not supported.
	ErrInterface = errors.New("interface names are not supported")
	// ErrInvalidPort is wrapped by every error ParsePort returns.
	ErrInvalidPort = errors.New("addrmatch: invalid port")
)

// MaxNameLen bounds a host or domain name (the DNS limit).
const MaxNameLen = 253

// Kind is the form of an Addr.
type Kind uint8

// The kinds of Addr.
const (
	KindAny    Kind = iota // matches everything: the zero Addr, or "0/0"
	KindPrefix             // an IP prefix
	KindName               // a host name
	KindDomain             // a domain: the name and every name under it
)

// Addr is an address pattern. The zero value matches every address.
type Addr struct {
	kind   Kind
	prefix netip.Prefix
	name   string // lower case, without a trailing dot; for KindDomain without the leading dot
}

// Any returns the Addr that matches everything (the same as the zero Addr).
func Any() Addr { return Addr{} }

// PrefixAddr returns the Addr that matches the IP addresses in p.
func PrefixAddr(p netip.Prefix) Addr {
	return Addr{kind: KindPrefix, prefix: p.Masked()}
}

// interfaceExists reports whether name is a local network interface. A
// variable so that tests can replace it.
var interfaceExists = func(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// ParseAddr parses an address pattern in one of Dante's forms: "0/0",
// "a.b.c.d/bits", "a.b.c.d/a.b.c.d" (a dotted netmask, which must be
// contiguous), "ipv6/bits", a host name, or ".domain". A bare IP address
// without a mask is an error, as in Dante. So is the name of a local
// network interface ([ErrInterface]).
func ParseAddr(s string) (Addr, error) {
	bad := func(format string, args ...any) (Addr, error) {
		return Addr{}, fmt.Errorf("%w %q: %s", ErrInvalidAddr, clip(s), fmt.Sprintf(format, args...))
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > MaxNameLen+2 {
		return bad("longer than %d bytes", MaxNameLen)
	}
	if s == "0/0" {
		return Addr{}, nil
	}
	if ip, bits, ok := strings.Cut(s, "/"); ok {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return bad("not an IP address before the '/'")
		}
		if addr.Zone() != "" {
			return bad("zones are not supported")
		}
		addr = addr.Unmap()
		n, err := strconv.Atoi(bits)
		if err != nil || strings.ContainsAny(bits, "+-") {
			mask, merr := netip.ParseAddr(bits)
			if merr != nil || !mask.Is4() || !addr.Is4() {
				return bad("the mask must be a number of bits or an IPv4 netmask")
			}
			n = maskBits(mask)
			if n < 0 {
				return bad("the netmask %s is not contiguous", mask)
			}
		}
		if n < 0 || n > addr.BitLen() {
			return bad("a /%d mask is out of range for this address", n)
		}
		return PrefixAddr(netip.PrefixFrom(addr, n)), nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return bad("a netmask is required (for one address write %s/%d)", s, ip.BitLen())
	}
	kind := KindName
	name := s
	if strings.HasPrefix(s, ".") {
		kind = KindDomain
		name = s[1:]
	}
	name = strings.TrimSuffix(name, ".")
	if _, err := netip.ParseAddr(name); err == nil && kind == KindName {
		return bad("an IP address needs a netmask, not a trailing dot")
	}
	if err := checkName(name); err != nil {
		return bad("%v", err)
	}
	name = strings.ToLower(name)
	if kind == KindName && !strings.Contains(name, ".") && interfaceExists(name) {
		return Addr{}, fmt.Errorf("%w %q: %w (write the interface's addresses instead)", ErrInvalidAddr, s, ErrInterface)
	}
	return Addr{kind: kind, name: name}, nil
}

// maskBits returns the prefix length of a contiguous IPv4 netmask, or -1.
func maskBits(m netip.Addr) int {
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&0x80000000 != 0 {
		v <<= 1
		n++
	}
	if v != 0 {
		return -1
	}
	return n
}

// checkName checks a host name's syntax: dot-separated labels of letters,
// digits, '-' and '_', 1 to 63 bytes each.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("a name is at most %d bytes", MaxNameLen)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("a name's labels must be 1 to 63 bytes")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("the character %q is not allowed in a host name", c)
			}
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Kind returns the pattern's form.
func (a Addr) Kind() Kind { return a.kind }

// Prefix returns the IP prefix of a KindPrefix Addr.
func (a Addr) Prefix() (netip.Prefix, bool) { return a.prefix, a.kind == KindPrefix }

// Name returns the name of a KindName Addr, or the domain (without its
// leading dot) of a KindDomain Addr, in lower case.
func (a Addr) Name() string { return a.name }

// String returns the pattern in the form ParseAddr reads.
func (a Addr) String() string {
	switch a.kind {
	case KindPrefix:
		return a.prefix.String()
	case KindName:
		return a.name
	case KindDomain:
		return "." + a.name
	}
	return "0/0"
}

// Match reports whether a destination or client matches the pattern,
// without any DNS lookup. name is the host name the request carries
// (empty when it carries an IP); ip is its IP address (invalid when it
// carries a name). Both may be set, for example for a client whose reverse
// DNS name is known.
func (a Addr) Match(name string, ip netip.Addr) bool {
	switch a.kind {
	case KindAny:
		return true
	case KindPrefix:
		return ip.IsValid() && a.prefix.Contains(ip.Unmap())
	case KindName:
		return name != "" && strings.EqualFold(strings.TrimSuffix(name, "."), a.name)
	case KindDomain:
		return name != "" && inDomain(name, a.name)
	}
	return false
}

func inDomain(name, domain string) bool {
	name = strings.TrimSuffix(name, ".")
	if len(name) < len(domain) || !strings.EqualFold(name[len(name)-len(domain):], domain) {
		return false
	}
	return len(name) == len(domain) || name[len(name)-len(domain)-1] == '.'
}

// Resolver is the DNS a pattern may consult; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// maxAnswers bounds how many addresses or names of one lookup are
// compared.
const maxAnswers = 64

// MatchResolve is Match, and when that fails and r is not nil, Dante's
// resolving semantics: a prefix matches a name when any address of the
// name is inside it; a host name matches an IP when the name resolves to
// it, and another name when their addresses intersect; a domain matches an
// IP whose reverse-DNS names include one under the domain. A lookup error
// is returned with false; callers decide whether that is "no match" (as
// Dante logs a block) or a failure.
func (a Addr) MatchResolve(ctx context.Context, r Resolver, name string, ip netip.Addr) (bool, error) {
	if a.Match(name, ip) {
		return true, nil
	}
	if r == nil {
		return false, nil
	}
	switch a.kind {
	case KindPrefix:
		if name == "" {
			return false, nil
		}
		ips, err := lookup(ctx, r, name)
		if err != nil {
			return false, err
		}
		for _, x := range ips {
			if a.prefix.Contains(x.Unmap()) {
				return true, nil
			}
		}
	case KindName:
		mine, err := lookup(ctx, r, a.name)
		if err != nil {
			return false, err
		}
		var theirs []netip.Addr
		if ip.IsValid() {
			theirs = append(theirs, ip)
		}
		if name != "" {
			more, err := lookup(ctx, r, name)
			if err != nil {
				return false, err
			}
			theirs = append(theirs, more...)
		}
		for _, x := range mine {
			for _, y := range theirs {
				if x.Unmap() == y.Unmap() {
					return true, nil
				}
			}
		}
	case KindDomain:
		if !ip.IsValid() {
			return false, nil
		}
		names, err := r.LookupAddr(ctx, ip.Unmap().String())
		if err != nil {
			return false, err
		}
		for i, n := range names {
			if i >= maxAnswers {
				break
			}
			if inDomain(n, a.name) {
				return true, nil
			}
		}
	}
	return false, nil
}

func lookup(ctx context.Context, r Resolver, name string) ([]netip.Addr, error) {
	ips, err := r.LookupNetIP(ctx, "ip", name)
	if len(ips) > maxAnswers {
		ips = ips[:maxAnswers]
	}
	return ips, err
}
