package socks

import (
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/virgilproxy/socks/auth"
)

// Protocol is the proxy protocol a request arrived in.
type Protocol uint8

// The protocols a Server speaks.
const (
	ProtocolSOCKS4      Protocol = iota + 1 // SOCKS version 4
	ProtocolSOCKS4a                         // SOCKS version 4 with a host name (the 4a extension)
	ProtocolSOCKS5                          // SOCKS version 5 (RFC 1928)
	ProtocolHTTPConnect                     // HTTP CONNECT (RFC 9110 section 9.3.6)
	ProtocolMSProxy                         // Microsoft Proxy Server 2.0's Winsock proxy protocol (client side only)
)

// String returns the protocol's name in Dante's vocabulary where it has one
// ("socks_v4", "socks_v5"), else a short name ("socks_v4a", "http").
func (p Protocol) String() string {
	switch p {
	case ProtocolSOCKS4:
		return "socks_v4"
	case ProtocolSOCKS4a:
		return "socks_v4a"
	case ProtocolSOCKS5:
		return "socks_v5"
	case ProtocolHTTPConnect:
		return "http"
	case ProtocolMSProxy:
		return "msproxy_v2"
	}
	return "protocol(" + strconv.Itoa(int(p)) + ")"
}

// Command is what a client asks the proxy to do.
type Command uint8

// The commands of SOCKS; HTTP CONNECT only ever asks for CommandConnect.
const (
	CommandConnect   Command = iota + 1 // open a TCP connection to Dest
	CommandBind                         // listen for one incoming TCP connection from Dest
	CommandAssociate                    // relay UDP datagrams (SOCKS5 UDP ASSOCIATE)
)

// String returns the command's name in Dante's vocabulary ("connect",
// "bind", "udpassociate").
func (c Command) String() string {
	switch c {
	case CommandConnect:
		return "connect"
	case CommandBind:
		return "bind"
	case CommandAssociate:
		return "udpassociate"
	}
	return "command(" + strconv.Itoa(int(c)) + ")"
}

// Addr is a destination as a client named it: a host name or an IP address,
// and a port. Names are kept as names so that policy sees what the client
// asked for and so that a chained upstream proxy can resolve them itself.
// Addr implements net.Addr.
type Addr struct {
	Name string     // host name; empty when IP is valid
	IP   netip.Addr // IP address; invalid when Name is set
	Port uint16
}

// AddrFromAddrPort returns the Addr for an IP address and port. An
// IPv4-mapped IPv6 address becomes plain IPv4.
func AddrFromAddrPort(ap netip.AddrPort) Addr {
	return Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}
}

// ParseAddr parses "host:port" into an Addr. A host that parses as an IP
// address becomes IP; any other host becomes Name.
func ParseAddr(hostport string) (Addr, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return Addr{}, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return Addr{}, &net.AddrError{Err: "invalid port", Addr: hostport}
	}
	if host == "" {
		return Addr{}, &net.AddrError{Err: "missing host", Addr: hostport}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return Addr{IP: ip.Unmap(), Port: uint16(port)}, nil
	}
	return Addr{Name: host, Port: uint16(port)}, nil
}

// Host returns the name or the IP address as a string.
func (a Addr) Host() string {
	if a.Name != "" {
		return a.Name
	}
	if a.IP.IsValid() {
		return a.IP.String()
	}
	return ""
}

// String returns "host:port", with brackets around an IPv6 address.
func (a Addr) String() string {
	return net.JoinHostPort(a.Host(), strconv.Itoa(int(a.Port)))
}

// Network returns "tcp": an Addr names the endpoint of a stream (for UDP
// the datagram's own header carries its address).
func (a Addr) Network() string { return "tcp" }

// AddrPort returns the IP address and port, and false when a is a name.
func (a Addr) AddrPort() (netip.AddrPort, bool) {
	if a.Name != "" || !a.IP.IsValid() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.IP, a.Port), true
}

// Request is one proxy request, the same for every protocol. Request
// middleware may read it and change Dest (to redirect); the final Handler
// acts on it.
type Request struct {
	Protocol Protocol
	Command  Command
	// Dest is the destination the client asked for. For BIND it is the peer
	// the client expects; for UDP ASSOCIATE the address the client will
	// send from (zero when unknown).
	Dest Addr
	// Client is the client's address and Local the server address it
	// connected to.
	Client, Local net.Addr
	// Identity is who the client proved to be; its Method is auth.MethodNone
	// when the client did not authenticate.
	Identity *auth.Identity
	// UserID is the SOCKS4 USERID field as sent. It is not verified.
	UserID string
	// Traffic counts the bytes relayed for this request; the handler that
	// relays adds to it, logging and accounting middleware read it.
	Traffic *Traffic
	// Start is when the client's connection was accepted.
	Start time.Time
	// PeerFilter, if set by middleware, is asked about every BIND peer and
	// every UDP datagram of the session; nil accepts all.
	PeerFilter PeerFilter
}

// Traffic counts the bytes a session moved. It is safe for concurrent use.
type Traffic struct {
	// FromClient counts bytes read from the client (and sent to the target).
	FromClient atomic.Int64
	// ToClient counts bytes written to the client (read from the target).
	ToClient atomic.Int64
}

// Direction says which way a peer is checked by a PeerFilter.
type Direction uint8

// Directions of a PeerFilter check, in Dante's terms.
const (
	// Outbound: a UDP datagram the client sends to a peer (udpassociate).
	Outbound Direction = iota + 1
	// Inbound: a peer connecting to a BIND listener (bindreply) or a UDP
	// datagram from a peer to the client (udpreply).
	Inbound
)

// String returns "outbound" or "inbound".
func (d Direction) String() string {
	switch d {
	case Outbound:
		return "outbound"
	case Inbound:
		return "inbound"
	}
	return "direction(" + strconv.Itoa(int(d)) + ")"
}

// PeerFilter decides, for BIND and UDP ASSOCIATE sessions, whether the
// server accepts a peer: each BIND connection and each UDP datagram in
// either direction. Policy middleware sets Request.PeerFilter to apply
// Dante's bindreply, udpassociate and udpreply rules. It must be fast and
// safe for concurrent use.
type PeerFilter func(dir Direction, peer Addr) bool
