package socks5

import (
	"errors"
	"iter"
	"math/bits"
	"strconv"
	"strings"
)

// Version is the SOCKS protocol version byte of every RFC 1928 message.
const Version = 0x05

// UsernamePasswordVersion is the version byte of the RFC 1929
// username/password sub-negotiation.
const UsernamePasswordVersion = 0x01

// Method is an authentication method number, offered by the client in its
// greeting and chosen by the server in its method selection.
type Method byte

// Authentication methods of RFC 1928. Values 0x03 to 0x7F are assigned by
// IANA, 0x80 to 0xFE are for private use.
const (
	MethodNoAuth           Method = 0x00 // no authentication required
	MethodGSSAPI           Method = 0x01 // GSS-API (RFC 1961)
	MethodUsernamePassword Method = 0x02 // username/password (RFC 1929)
	MethodNoAcceptable     Method = 0xFF // no acceptable method; the server closes
)

// String returns the method's name in Dante's configuration vocabulary
// ("none", "gssapi", "username"), "no-acceptable" for 0xFF, and
// "method(0xNN)" for any other value.
func (m Method) String() string {
	switch m {
	case MethodNoAuth:
		return "none"
	case MethodGSSAPI:
		return "gssapi"
	case MethodUsernamePassword:
		return "username"
	case MethodNoAcceptable:
		return "no-acceptable"
	}
	return "method(" + hexByte(byte(m)) + ")"
}

// MethodSet is a set of methods, a 256-bit bitmap. Its zero value is the
// empty set. It is a plain value: copying it copies the set, and no
// operation allocates except String.
type MethodSet [4]uint64

// MethodSetOf returns the set holding the given methods.
func MethodSetOf(methods ...Method) MethodSet {
	var s MethodSet
	for _, m := range methods {
		s.Add(m)
	}
	return s
}

// Add adds m to the set.
func (s *MethodSet) Add(m Method) { s[m>>6] |= 1 << (m & 63) }

// Has reports whether m is in the set.
func (s MethodSet) Has(m Method) bool { return s[m>>6]&(1<<(m&63)) != 0 }

// Len returns the number of methods in the set.
func (s MethodSet) Len() int {
	return bits.OnesCount64(s[0]) + bits.OnesCount64(s[1]) + bits.OnesCount64(s[2]) + bits.OnesCount64(s[3])
}

// All yields the methods of the set in increasing order.
func (s MethodSet) All() iter.Seq[Method] {
	return func(yield func(Method) bool) {
		for i, w := range s {
			for w != 0 {
				b := bits.TrailingZeros64(w)
				w &= w - 1
				if !yield(Method(i*64 + b)) {
					return
				}
			}
		}
	}
}

// String returns the methods in increasing order, space-separated in
// brackets, for example "[none username]".
func (s MethodSet) String() string {
	var sb strings.Builder
	sb.WriteByte('[')
	first := true
	for m := range s.All() {
		if !first {
			sb.WriteByte(' ')
		}
		first = false
		sb.WriteString(m.String())
	}
	sb.WriteByte(']')
	return sb.String()
}

// Command is the CMD byte of a request.
type Command byte

// Commands of RFC 1928.
const (
	CommandConnect      Command = 1
	CommandBind         Command = 2
	CommandUDPAssociate Command = 3
)

// String returns the command's name in Dante's vocabulary ("connect",
// "bind", "udpassociate"), or "command(0xNN)" for any other value.
func (c Command) String() string {
	switch c {
	case CommandConnect:
		return "connect"
	case CommandBind:
		return "bind"
	case CommandUDPAssociate:
		return "udpassociate"
	}
	return "command(" + hexByte(byte(c)) + ")"
}

// ReplyCode is the REP byte of a reply.
type ReplyCode byte

// Reply codes of RFC 1928.
const (
	ReplySucceeded               ReplyCode = 0
	ReplyGeneralFailure          ReplyCode = 1
	ReplyNotAllowed              ReplyCode = 2 // connection not allowed by ruleset
	ReplyNetworkUnreachable      ReplyCode = 3
	ReplyHostUnreachable         ReplyCode = 4
	ReplyConnectionRefused       ReplyCode = 5
	ReplyTTLExpired              ReplyCode = 6
	ReplyCommandNotSupported     ReplyCode = 7
	ReplyAddressTypeNotSupported ReplyCode = 8
)

var replyText = [...]string{
	ReplySucceeded:               "succeeded",
	ReplyGeneralFailure:          "general SOCKS server failure",
	ReplyNotAllowed:              "connection not allowed by ruleset",
	ReplyNetworkUnreachable:      "network unreachable",
	ReplyHostUnreachable:         "host unreachable",
	ReplyConnectionRefused:       "connection refused",
	ReplyTTLExpired:              "TTL expired",
	ReplyCommandNotSupported:     "command not supported",
	ReplyAddressTypeNotSupported: "address type not supported",
}

// String returns the meaning RFC 1928 gives the code, or "reply(0xNN)" for
// an unassigned value.
func (c ReplyCode) String() string {
	if int(c) < len(replyText) {
		return replyText[c]
	}
	return "reply(" + hexByte(byte(c)) + ")"
}

func hexByte(b byte) string {
	s := strconv.FormatUint(uint64(b), 16)
	if len(s) == 1 {
		s = "0" + s
	}
	return "0x" + s
}

// Sentinel errors. Errors returned by this package wrap one or more of
// them; test with errors.Is.
var (
	// ErrVersion: a VER byte is not 5 (or not 1 in RFC 1929 messages).
	ErrVersion = errors.New("socks5: unsupported version")
	// ErrNoMethods: a greeting offers no method (NMETHODS is 0), or
	// AppendGreeting was given none.
	ErrNoMethods = errors.New("socks5: no authentication methods offered")
	// ErrTooManyMethods: AppendGreeting was given more than 255 methods.
	ErrTooManyMethods = errors.New("socks5: more than 255 authentication methods")
	// ErrBadUsernamePassword: an RFC 1929 request is malformed (a version
	// other than 1, ULEN or PLEN 0), or a user name or password to encode is
	// not 1 to 255 bytes long.
	ErrBadUsernamePassword = errors.New("socks5: malformed username/password request")
	// ErrCommandNotSupported: a request's CMD is not CONNECT, BIND or UDP
	// ASSOCIATE. The server answers ReplyCommandNotSupported.
	ErrCommandNotSupported = errors.New("socks5: command not supported")
	// ErrAddressType: an ATYP is not 1, 3 or 4. The server answers
	// ReplyAddressTypeNotSupported.
	ErrAddressType = errors.New("socks5: address type not supported")
	// ErrEmptyDomain: a domain name address has length 0.
	ErrEmptyDomain = errors.New("socks5: empty domain name")
	// ErrBadReserved: the reserved bytes of a UDP datagram header are not
	// 0. (The RSV byte of requests and replies is not checked.)
	ErrBadReserved = errors.New("socks5: reserved field not zero")
	// ErrBadAddress: an Addr to encode has neither a valid IP nor a domain
	// name of 1 to 255 bytes, or a string does not parse as an address.
	ErrBadAddress = errors.New("socks5: invalid address")
	// ErrBadDatagram: a UDP datagram is truncated or its header is
	// malformed. Every error of ParseDatagram wraps it.
	ErrBadDatagram = errors.New("socks5: malformed UDP datagram")
	// ErrShortReply: the server's answer (method selection, RFC 1929 reply
	// or request reply) ended early, or never came. Such errors also wrap
	// io.EOF (nothing arrived) or io.ErrUnexpectedEOF (part of it arrived).
	ErrShortReply = errors.New("socks5: server's reply truncated")
)

// wireError is an error wrapping several sentinels. Package-level values of
// it let hot paths (datagrams) fail without allocating.
type wireError struct {
	msg  string
	errs []error
}

func (e *wireError) Error() string   { return e.msg }
func (e *wireError) Unwrap() []error { return e.errs }
