package socks5

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
)

// ReadGreeting reads a client's greeting, VER NMETHODS METHODS, and returns
// the methods it offers. VER must be 5 (ErrVersion) and NMETHODS at least 1
// (ErrNoMethods). Duplicates are allowed and collapse in the set. It does
// not allocate.
func ReadGreeting(br *bufio.Reader) (MethodSet, error) {
	var set MethodSet
	v, err := br.ReadByte()
	if err != nil {
		return set, err
	}
	if v != Version {
		return set, fmt.Errorf("%w: greeting version 0x%02x", ErrVersion, v)
	}
	n, err := readByte(br)
	if err != nil {
		return set, err
	}
	if n == 0 {
		return set, ErrNoMethods
	}
	var buf [255]byte
	if err := readFull(br, buf[:n]); err != nil {
		return set, err
	}
	for _, m := range buf[:n] {
		set.Add(Method(m))
	}
	return set, nil
}

// AppendMethodSelection appends the server's method selection, VER METHOD,
// to b. Send MethodNoAcceptable, then close, when no offered method is
// acceptable.
func AppendMethodSelection(b []byte, m Method) []byte {
	return append(b, Version, byte(m))
}

// ReadUsernamePasswordRequest reads an RFC 1929 request, VER ULEN UNAME
// PLEN PASSWD. VER must be 1, and ULEN and PLEN 1 to 255; otherwise the
// error wraps ErrBadUsernamePassword (and ErrVersion for a wrong version).
// It allocates the two strings. The password never appears in an error.
func ReadUsernamePasswordRequest(br *bufio.Reader) (user, password string, err error) {
	v, err := br.ReadByte()
	if err != nil {
		return "", "", err
	}
	if v != UsernamePasswordVersion {
		return "", "", fmt.Errorf("%w: %w: sub-negotiation version 0x%02x", ErrBadUsernamePassword, ErrVersion, v)
	}
	var buf [255]byte
	ulen, err := readByte(br)
	if err != nil {
		return "", "", err
	}
	if ulen == 0 {
		return "", "", fmt.Errorf("%w: empty user name", ErrBadUsernamePassword)
	}
	if err := readFull(br, buf[:ulen]); err != nil {
		return "", "", err
	}
	user = string(buf[:ulen])
	plen, err := readByte(br)
	if err != nil {
		return "", "", err
	}
	if plen == 0 {
		return "", "", fmt.Errorf("%w: empty password", ErrBadUsernamePassword)
	}
	if err := readFull(br, buf[:plen]); err != nil {
		return "", "", err
	}
	return user, string(buf[:plen]), nil
}

// AppendUsernamePasswordReply appends the RFC 1929 reply to b: 01 00 on
// success, 01 01 on failure (after which the server closes).
func AppendUsernamePasswordReply(b []byte, success bool) []byte {
	if success {
		return append(b, UsernamePasswordVersion, 0)
	}
	return append(b, UsernamePasswordVersion, 1)
}

// Request is a client's request: a command and its destination (for
// CONNECT), expected peer (BIND) or UDP source (UDP ASSOCIATE).
type Request struct {
	Command Command
	Addr    Addr
}

// ReadRequest reads a client's request, VER CMD RSV ATYP DST.ADDR
// DST.PORT. VER must be 5 (ErrVersion). RSV is not checked.
//
// A command other than CONNECT, BIND or UDP ASSOCIATE gives an error
// wrapping ErrCommandNotSupported, returned with a Request whose Command is
// set (for logging); the rest of the request is left unread. An unknown
// ATYP gives an error wrapping ErrAddressType and a domain of length 0
// ErrEmptyDomain, both returned with Command set. ReplyFor tells which
// reply, if any, to send for an error.
//
// Reading an IP request does not allocate; a domain name allocates its
// string.
func ReadRequest(br *bufio.Reader) (Request, error) {
	var r Request
	v, err := br.ReadByte()
	if err != nil {
		return r, err
	}
	if v != Version {
		return r, fmt.Errorf("%w: request version 0x%02x", ErrVersion, v)
	}
	c, err := readByte(br)
	if err != nil {
		return r, err
	}
	r.Command = Command(c)
	switch r.Command {
	case CommandConnect, CommandBind, CommandUDPAssociate:
	default:
		return r, fmt.Errorf("%w: 0x%02x", ErrCommandNotSupported, c)
	}
	if _, err := readByte(br); err != nil { // RSV, accepted whatever its value
		return r, err
	}
	atyp, err := readByte(br)
	if err != nil {
		return r, err
	}
	r.Addr, err = readAddr(br, atyp)
	return r, err
}

// AppendReply appends a server's reply, VER REP RSV ATYP BND.ADDR BND.PORT,
// to b. A bound address that is not valid (see Addr.IsValid), such as the
// zero Addr, is written as IPv4 0.0.0.0 with bound.Port; a Name is written
// as ATYP 3. It does not allocate when b has room.
func AppendReply(b []byte, code ReplyCode, bound Addr) []byte {
	if !bound.IsValid() {
		bound = Addr{IP: netip.IPv4Unspecified(), Port: bound.Port}
	}
	b = append(b, Version, byte(code), 0)
	b, _ = bound.AppendBinary(b) // cannot fail: bound is valid
	return b
}

// ReplyFor reports the reply code a server should send for an error
// returned by ReadRequest, and whether to send a reply at all:
//
//   - ErrCommandNotSupported: ReplyCommandNotSupported (7), true
//   - ErrAddressType: ReplyAddressTypeNotSupported (8), true
//   - ErrEmptyDomain: ReplyGeneralFailure (1), true
//
// Any other error gets no reply (ReplyGeneralFailure, false): ErrVersion
// (the peer does not speak SOCKS5) and I/O errors such as io.EOF,
// io.ErrUnexpectedEOF or a timeout. A nil error gives ReplySucceeded,
// false. After an error the server closes the connection, replying first
// when told to: the rest of the request may be unread.
func ReplyFor(err error) (ReplyCode, bool) {
	switch {
	case err == nil:
		return ReplySucceeded, false
	case errors.Is(err, ErrCommandNotSupported):
		return ReplyCommandNotSupported, true
	case errors.Is(err, ErrAddressType):
		return ReplyAddressTypeNotSupported, true
	case errors.Is(err, ErrEmptyDomain):
		return ReplyGeneralFailure, true
	}
	return ReplyGeneralFailure, false
}
