package socks5

import (
	"bufio"
	"fmt"
	"io"
)

// Errors for a server's answer that ended early.
var (
	errNoReply    = &wireError{"socks5: server closed the connection without replying", []error{ErrShortReply, io.EOF}}
	errShortReply = &wireError{"socks5: server's reply truncated", []error{ErrShortReply, io.ErrUnexpectedEOF}}
)

// replyStart maps end of input before the first byte of a server's answer.
func replyStart(err error) error {
	if err == io.EOF {
		return errNoReply
	}
	return err
}

// replyMid maps end of input inside a server's answer.
func replyMid(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errShortReply
	}
	return err
}

// AppendGreeting appends a client's greeting, VER NMETHODS METHODS, to b.
// It offers the methods in the order given and fails with ErrNoMethods or
// ErrTooManyMethods, returning b unchanged, unless there are 1 to 255.
func AppendGreeting(b []byte, methods ...Method) ([]byte, error) {
	switch {
	case len(methods) == 0:
		return b, ErrNoMethods
	case len(methods) > 255:
		return b, fmt.Errorf("%w: %d", ErrTooManyMethods, len(methods))
	}
	b = append(b, Version, byte(len(methods)))
	for _, m := range methods {
		b = append(b, byte(m))
	}
	return b, nil
}

// ReadMethodSelection reads the server's method selection, VER METHOD. VER
// must be 5 (ErrVersion). The method is returned whatever its value: the
// caller checks that it is one it offered, and treats MethodNoAcceptable as
// a refusal.
func ReadMethodSelection(br *bufio.Reader) (Method, error) {
	v, err := br.ReadByte()
	if err != nil {
		return 0, replyStart(err)
	}
	if v != Version {
		return 0, fmt.Errorf("%w: method selection version 0x%02x", ErrVersion, v)
	}
	m, err := br.ReadByte()
	if err != nil {
		return 0, replyMid(err)
	}
	return Method(m), nil
}

// AppendUsernamePasswordRequest appends an RFC 1929 request, VER ULEN UNAME
// PLEN PASSWD, to b. The user name and password must be 1 to 255 bytes
// long; otherwise it fails with ErrBadUsernamePassword and returns b
// unchanged.
func AppendUsernamePasswordRequest(b []byte, user, password string) ([]byte, error) {
	if len(user) == 0 || len(user) > 255 {
		return b, fmt.Errorf("%w: user name of %d bytes", ErrBadUsernamePassword, len(user))
	}
	if len(password) == 0 || len(password) > 255 {
		return b, fmt.Errorf("%w: password of %d bytes", ErrBadUsernamePassword, len(password))
	}
	b = append(b, UsernamePasswordVersion, byte(len(user)))
	b = append(b, user...)
	b = append(b, byte(len(password)))
	b = append(b, password...)
	return b, nil
}

// ReadUsernamePasswordReply reads an RFC 1929 reply, VER STATUS, and
// reports whether STATUS is 0 (success). VER must be 1 (ErrVersion).
func ReadUsernamePasswordReply(br *bufio.Reader) (success bool, err error) {
	v, err := br.ReadByte()
	if err != nil {
		return false, replyStart(err)
	}
	if v != UsernamePasswordVersion {
		return false, fmt.Errorf("%w: sub-negotiation reply version 0x%02x", ErrVersion, v)
	}
	s, err := br.ReadByte()
	if err != nil {
		return false, replyMid(err)
	}
	return s == 0, nil
}

// AppendRequest appends a client's request, VER CMD RSV ATYP DST.ADDR
// DST.PORT, to b. Any command value is written, so that extensions can be
// sent. It fails with ErrBadAddress, returning b unchanged, when r.Addr is
// not valid. It does not allocate when b has room.
func AppendRequest(b []byte, r Request) ([]byte, error) {
	if !r.Addr.IsValid() {
		_, err := r.Addr.AppendBinary(nil)
		return b, err
	}
	b = append(b, Version, byte(r.Command), 0)
	return r.Addr.AppendBinary(b)
}

// Reply is a server's reply: a code and the bound address.
type Reply struct {
	Code ReplyCode
	Addr Addr
}

// ReadReply reads a server's reply, VER REP RSV ATYP BND.ADDR BND.PORT. VER
// must be 5 (ErrVersion); RSV is not checked; any REP value is returned.
// An unknown ATYP gives ErrAddressType and a domain of length 0
// ErrEmptyDomain. When an error comes after REP, the returned Reply still
// has its Code, so that a client can report why a server that sent a
// truncated failure reply refused. It does not allocate for an IP address.
func ReadReply(br *bufio.Reader) (Reply, error) {
	var r Reply
	v, err := br.ReadByte()
	if err != nil {
		return r, replyStart(err)
	}
	if v != Version {
		return r, fmt.Errorf("%w: reply version 0x%02x", ErrVersion, v)
	}
	code, err := br.ReadByte()
	if err != nil {
		return r, replyMid(err)
	}
	r.Code = ReplyCode(code)
	if _, err := br.ReadByte(); err != nil { // RSV
		return r, replyMid(err)
	}
	atyp, err := br.ReadByte()
	if err != nil {
		return r, replyMid(err)
	}
	r.Addr, err = readAddr(br, atyp)
	return r, replyMid(err)
}
