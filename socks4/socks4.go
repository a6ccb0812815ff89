// Package socks4 is a wire codec for SOCKS version 4 and its 4a extension.
//
// It parses and writes the two SOCKS4 messages, for both sides of a
// connection:
//
//	request  VN[1]=4 CD[1] DSTPORT[2] DSTIP[4] USERID... 0x00 [HOST... 0x00]
//	reply    VN[1]=0 CD[1] DSTPORT[2] DSTIP[4]
//
// A server calls [ReadRequest] and then writes one reply (two for BIND) with
// [AppendReply]; a client writes with [AppendRequest] and reads with
// [ReadReply]. The package never dials, resolves, verifies an identity or
// decides policy: it takes and returns plain values (netip addresses, host
// names, byte codes).
//
// # SOCKS4a
//
// A request whose DSTIP is 0.0.0.x with x != 0 is a SOCKS4a request: a host
// name, NUL-terminated, follows the user ID, and the server resolves it.
// [ReadRequest] returns it in [Request.Host] and keeps the 0.0.0.x marker in
// [Request.IP]. (Dante's sockd does not serve 4a and takes 0.0.0.x
// literally; this package does serve it.)
//
// # Hostile input
//
// The user ID and the host name are unbounded in the protocol. The reader
// looks at no more than [MaxUserIDLen] (or [MaxHostLen]) bytes plus the
// terminating NUL, allocates nothing beyond the string it returns, and fails
// with [ErrUserIDTooLong] or [ErrHostTooLong] when no NUL is found in time
// (Dante also caps the user ID at 255 bytes). The host name is returned as
// sent (any bytes except NUL); validating it as a DNS name is the resolver's
// job.
//
// # Reading
//
// The readers take a *bufio.Reader, use only its Peek, Discard and Buffered
// methods, and never read past the end of the message: bytes that follow
// (the start of the tunnelled stream) stay in the reader. They work with the
// smallest bufio buffer (16 bytes) and with input that arrives one byte at a
// time. Reading a SOCKS4 request with an empty user ID allocates nothing;
// otherwise only the returned strings are allocated. I/O errors are returned
// as they are; a stream that ends inside a message gives io.ErrUnexpectedEOF,
// one that ends before its first byte io.EOF.
package socks4

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Version is the version byte (VN) of a SOCKS4 request.
const Version = 0x04

// ReplyVersion is the version byte (VN) of a SOCKS4 reply.
const ReplyVersion = 0x00

// MaxUserIDLen is the longest user ID, in bytes without its NUL, that
// ReadRequest and AppendRequest accept.
const MaxUserIDLen = 255

// MaxHostLen is the longest SOCKS4a host name, in bytes without its NUL,
// that ReadRequest and AppendRequest accept.
const MaxHostLen = 255

// headerLen is the fixed part of a request and the whole of a reply.
const headerLen = 8

// Command is the command code (CD) of a request.
type Command byte

// The SOCKS4 commands.
const (
	CommandConnect Command = 1 // CONNECT: open a TCP connection to the destination
	CommandBind    Command = 2 // BIND: accept one TCP connection from the destination
)

// String returns "CONNECT", "BIND", or "Command(n)" for other values.
func (c Command) String() string {
	switch c {
	case CommandConnect:
		return "CONNECT"
	case CommandBind:
		return "BIND"
	}
	return "Command(" + strconv.Itoa(int(c)) + ")"
}

// ReplyCode is the result code (CD) of a reply.
type ReplyCode byte

// The SOCKS4 reply codes.
const (
	ReplyGranted       ReplyCode = 90 // request granted
	ReplyRejected      ReplyCode = 91 // request rejected or failed
	ReplyNoIdentd      ReplyCode = 92 // rejected: the server could not reach the client's identd
	ReplyIdentMismatch ReplyCode = 93 // rejected: identd's user differs from the request's user ID
)

// String describes the code, or returns "ReplyCode(n)" for unknown values.
func (c ReplyCode) String() string {
	switch c {
	case ReplyGranted:
		return "request granted"
	case ReplyRejected:
		return "request rejected or failed"
	case ReplyNoIdentd:
		return "request rejected: cannot reach the client's identd"
	case ReplyIdentMismatch:
		return "request rejected: identd user differs from user ID"
	}
	return "ReplyCode(" + strconv.Itoa(int(c)) + ")"
}

// Errors returned (wrapped) by this package; test with errors.Is.
var (
	// ErrVersion: the version byte is not 4 (request) or not 0 or 4 (reply).
	ErrVersion = errors.New("socks4: unsupported version")
	// ErrCommandNotSupported: the request's command is neither CONNECT nor
	// BIND. ReadRequest still returns the decoded request with it.
	ErrCommandNotSupported = errors.New("socks4: command not supported")
	// ErrUserIDTooLong: the user ID is longer than MaxUserIDLen bytes.
	ErrUserIDTooLong = errors.New("socks4: user ID too long")
	// ErrHostTooLong: the SOCKS4a host name is longer than MaxHostLen bytes.
	ErrHostTooLong = errors.New("socks4: host name too long")
	// ErrEmptyHost: a SOCKS4a request (DSTIP 0.0.0.x, x != 0) with an empty
	// host name.
	ErrEmptyHost = errors.New("socks4: SOCKS4a request with empty host name")
	// ErrNotIPv4: AppendRequest was given no host name and an IP that is not
	// IPv4.
	ErrNotIPv4 = errors.New("socks4: destination is not an IPv4 address")
	// ErrContainsNUL: AppendRequest was given a user ID or host name
	// containing a NUL byte, which cannot be encoded.
	ErrContainsNUL = errors.New("socks4: string contains NUL")
)

// Request is a SOCKS4 or SOCKS4a request. For SOCKS4a, IP is 0.0.0.x
// (x != 0) and Host is the name that followed the user ID.
type Request struct {
	Command Command
	Port    uint16
	IP      netip.Addr
	UserID  string
	Host    string
}

// IsSOCKS4a reports whether r is a SOCKS4a request: Host is set, or IP is a
// 0.0.0.x (x != 0) marker.
func (r Request) IsSOCKS4a() bool {
	return r.Host != "" || is4aMarker(r.IP)
}

// is4aMarker reports whether ip is 0.0.0.x with x != 0.
func is4aMarker(ip netip.Addr) bool {
	if !ip.Is4() {
		return false
	}
	a := ip.As4()
	return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] != 0
}

// ReadRequest reads one request from br, starting at the version byte. It
// consumes exactly the request: bytes after the last NUL stay in br.
//
// Errors: ErrVersion (nothing past the version byte is consumed),
// ErrUserIDTooLong, ErrHostTooLong, ErrEmptyHost, or an I/O error as
// returned by br (io.ErrUnexpectedEOF for a stream that ends inside the
// request). For a command other than CONNECT and BIND the whole request is
// still read and returned, with ErrCommandNotSupported, so that a server can
// reply 91 and keep the stream in step; when the request is also malformed,
// the framing error (too long, empty host, I/O) is returned instead.
func ReadRequest(br *bufio.Reader) (Request, error) {
	var req Request
	if err := peekVersion(br, "request", Version, Version); err != nil {
		return req, err
	}
	h, err := br.Peek(headerLen)
	if err != nil {
		return req, noEOF(err)
	}
	req.Command = Command(h[1])
	req.Port = binary.BigEndian.Uint16(h[2:4])
	req.IP = netip.AddrFrom4([4]byte(h[4:8]))
	br.Discard(headerLen)

	var scratch [MaxUserIDLen]byte // MaxHostLen == MaxUserIDLen
	n, err := readCString(br, scratch[:], MaxUserIDLen)
	if err != nil {
		if err == errTooLong {
			return req, fmt.Errorf("%w (limit %d bytes)", ErrUserIDTooLong, MaxUserIDLen)
		}
		return req, noEOF(err)
	}
	req.UserID = string(scratch[:n])

	if is4aMarker(req.IP) {
		n, err := readCString(br, scratch[:], MaxHostLen)
		if err != nil {
			if err == errTooLong {
				return req, fmt.Errorf("%w (limit %d bytes)", ErrHostTooLong, MaxHostLen)
			}
			return req, noEOF(err)
		}
		if n == 0 {
			return req, ErrEmptyHost
		}
		req.Host = string(scratch[:n])
	}

	if req.Command != CommandConnect && req.Command != CommandBind {
		return req, fmt.Errorf("%w: %v", ErrCommandNotSupported, req.Command)
	}
	return req, nil
}

// errTooLong is readCString's internal signal; callers map it to the
// exported sentinel for the field.
var errTooLong = errors.New("too long")

// readCString reads a NUL-terminated string of at most max bytes (plus the
// NUL) into dst (len(dst) >= max), consuming the NUL. It looks at no more
// than max+1 bytes, and returns errTooLong when none of them is a NUL.
func readCString(br *bufio.Reader, dst []byte, max int) (int, error) {
	n := 0
	for {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				return n, err
			}
		}
		avail := br.Buffered()
		if limit := max + 1 - n; avail > limit {
			avail = limit
		}
		p, _ := br.Peek(avail) // already buffered: no I/O, no error
		if i := bytes.IndexByte(p, 0); i >= 0 {
			n += copy(dst[n:], p[:i])
			br.Discard(i + 1)
			return n, nil
		}
		if n+len(p) > max {
			br.Discard(len(p))
			return n, errTooLong
		}
		n += copy(dst[n:], p)
		br.Discard(len(p))
	}
}

// peekVersion checks the first byte of a message without consuming it
// unless it is acceptable (it is then left for the fixed-size read).
func peekVersion(br *bufio.Reader, what string, want1, want2 byte) error {
	v, err := br.Peek(1)
	if err != nil {
		return err // io.EOF here means a clean end before the message
	}
	if v[0] != want1 && v[0] != want2 {
		return fmt.Errorf("%w %d in %s", ErrVersion, v[0], what)
	}
	return nil
}

// noEOF turns io.EOF inside a message into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendRequest appends the encoding of r to b.
//
// When r.Host is not empty the SOCKS4a form is written: DSTIP is r.IP if it
// already is a 0.0.0.x (x != 0) marker, else 0.0.0.1, and the host name
// follows the user ID. Otherwise r.IP must be IPv4 (an IPv4-mapped IPv6
// address is unmapped) and must not be a 0.0.0.x marker, which would make
// the request a SOCKS4a one without a host (ErrEmptyHost). The command is
// written as given, whatever its value.
//
// On error b is returned unchanged, with ErrNotIPv4, ErrEmptyHost,
// ErrUserIDTooLong, ErrHostTooLong or ErrContainsNUL.
func AppendRequest(b []byte, r Request) ([]byte, error) {
	if len(r.UserID) > MaxUserIDLen {
		return b, fmt.Errorf("%w: %d bytes (limit %d)", ErrUserIDTooLong, len(r.UserID), MaxUserIDLen)
	}
	if strings.IndexByte(r.UserID, 0) >= 0 {
		return b, fmt.Errorf("%w: user ID", ErrContainsNUL)
	}
	var ip [4]byte
	if r.Host != "" {
		if len(r.Host) > MaxHostLen {
			return b, fmt.Errorf("%w: %d bytes (limit %d)", ErrHostTooLong, len(r.Host), MaxHostLen)
		}
		if strings.IndexByte(r.Host, 0) >= 0 {
			return b, fmt.Errorf("%w: host name", ErrContainsNUL)
		}
		ip = [4]byte{0, 0, 0, 1}
		if is4aMarker(r.IP) {
			ip = r.IP.As4()
		}
	} else {
		a := r.IP.Unmap()
		if !a.Is4() {
			return b, fmt.Errorf("%w: %v", ErrNotIPv4, r.IP)
		}
		if is4aMarker(a) {
			return b, fmt.Errorf("%w: IP %v without a host name", ErrEmptyHost, a)
		}
		ip = a.As4()
	}
	b = append(b, Version, byte(r.Command))
	b = binary.BigEndian.AppendUint16(b, r.Port)
	b = append(b, ip[:]...)
	b = append(b, r.UserID...)
	b = append(b, 0)
	if r.Host != "" {
		b = append(b, r.Host...)
		b = append(b, 0)
	}
	return b, nil
}

// Reply is a decoded SOCKS4 reply.
type Reply struct {
	Code ReplyCode
	Port uint16
	IP   netip.Addr // always IPv4
}

// AddrPort returns the reply's address and port.
func (r Reply) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(r.IP, r.Port)
}

// AppendReply appends a reply with the given code and address to b. An
// IPv4-mapped IPv6 address is unmapped; any other address that is not IPv4
// (IPv6, or the zero Addr) is written as 0.0.0.0, which for BIND tells the
// client to use the server's address. The port is written as given.
func AppendReply(b []byte, code ReplyCode, addr netip.AddrPort) []byte {
	var ip [4]byte
	if a := addr.Addr().Unmap(); a.Is4() {
		ip = a.As4()
	}
	b = append(b, ReplyVersion, byte(code))
	b = binary.BigEndian.AppendUint16(b, addr.Port())
	return append(b, ip[:]...)
}

// ReadReply reads one 8-byte reply from br and consumes nothing more.
//
// VN must be 0, as the protocol says; 4 is accepted too, because some
// servers echo the request's version. Any other version gives ErrVersion
// (with nothing past the version byte consumed). The code is returned as
// sent: any value other than ReplyGranted means the request failed.
func ReadReply(br *bufio.Reader) (Reply, error) {
	if err := peekVersion(br, "reply", ReplyVersion, Version); err != nil {
		return Reply{}, err
	}
	h, err := br.Peek(headerLen)
	if err != nil {
		return Reply{}, noEOF(err)
	}
	r := Reply{
		Code: ReplyCode(h[1]),
		Port: binary.BigEndian.Uint16(h[2:4]),
		IP:   netip.AddrFrom4([4]byte(h[4:8])),
	}
	br.Discard(headerLen)
	return r, nil
}
