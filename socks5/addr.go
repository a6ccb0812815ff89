package socks5

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Address types (ATYP) of RFC 1928.
const (
	AddrTypeIPv4   byte = 1
	AddrTypeDomain byte = 3
	AddrTypeIPv6   byte = 4
)

// MaxDomainLen is the longest domain name the protocol can carry: its
// length travels in one byte.
const MaxDomainLen = 255

// MaxAddrLen is the longest encoded address: ATYP, LEN, a 255-byte name and
// the port.
const MaxAddrLen = 1 + 1 + MaxDomainLen + 2

// MaxDatagramHeaderLen is the longest UDP datagram header: RSV, FRAG and
// the longest address. A relay that reserves this much room in front of a
// payload can always prepend a header without copying the payload.
const MaxDatagramHeaderLen = 2 + 1 + MaxAddrLen

// Addr is a SOCKS5 address: either an IP (when IP.IsValid()) or a domain
// Name of 1 to 255 bytes, plus a Port. When IP is valid, Name is ignored.
// An IPv6 zone is not carried on the wire.
type Addr struct {
	IP   netip.Addr
	Name string
	Port uint16
}

var _ encoding.BinaryAppender = Addr{}

// AddrFromAddrPort returns the Addr of ap, turning an IPv4-mapped IPv6
// address (as a dual-stack socket reports IPv4 peers) into plain IPv4.
func AddrFromAddrPort(ap netip.AddrPort) Addr {
	return Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}
}

// ParseAddr parses "host:port" (net.JoinHostPort form) into an Addr. A host
// that parses as an IP address becomes IP; anything else becomes Name,
// which must be 1 to 255 bytes long. The port must be a decimal number.
func ParseAddr(s string) (Addr, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Addr{}, fmt.Errorf("%w: %w", ErrBadAddress, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Addr{}, fmt.Errorf("%w: port %q", ErrBadAddress, port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return Addr{IP: ip, Port: uint16(p)}, nil
	}
	if len(host) == 0 || len(host) > MaxDomainLen {
		return Addr{}, fmt.Errorf("%w: host name of %d bytes", ErrBadAddress, len(host))
	}
	return Addr{Name: host, Port: uint16(p)}, nil
}

// IsValid reports whether a can be encoded: it has a valid IP, or a Name of
// 1 to 255 bytes.
func (a Addr) IsValid() bool {
	return a.IP.IsValid() || (len(a.Name) > 0 && len(a.Name) <= MaxDomainLen)
}

// AddrPort returns the IP and port of a, or the zero AddrPort when a holds
// no IP.
func (a Addr) AddrPort() netip.AddrPort {
	if !a.IP.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.IP, a.Port)
}

// String returns the address in net.JoinHostPort form: "192.0.2.1:80",
// "[2001:db8::1]:443", "example.com:80".
func (a Addr) String() string {
	if a.IP.IsValid() {
		return netip.AddrPortFrom(a.IP, a.Port).String()
	}
	return net.JoinHostPort(a.Name, strconv.Itoa(int(a.Port)))
}

// AppendBinary appends the wire form of a, ATYP, ADDR and PORT, to b. An
// IPv4 address (Is4) is written as ATYP 1, any other IP as ATYP 4, and a
// Name as ATYP 3. It fails with ErrBadAddress, and returns b unchanged,
// when a has neither an IP nor a Name of 1 to 255 bytes. It does not
// allocate when b has room.
func (a Addr) AppendBinary(b []byte) ([]byte, error) {
	switch {
	case a.IP.Is4():
		ip := a.IP.As4()
		b = append(b, AddrTypeIPv4)
		b = append(b, ip[:]...)
	case a.IP.IsValid():
		ip := a.IP.As16()
		b = append(b, AddrTypeIPv6)
		b = append(b, ip[:]...)
	case len(a.Name) > 0 && len(a.Name) <= MaxDomainLen:
		b = append(b, AddrTypeDomain, byte(len(a.Name)))
		b = append(b, a.Name...)
	case len(a.Name) == 0:
		return b, fmt.Errorf("%w: no IP and no name", ErrBadAddress)
	default:
		return b, fmt.Errorf("%w: domain name of %d bytes", ErrBadAddress, len(a.Name))
	}
	return binary.BigEndian.AppendUint16(b, a.Port), nil
}
