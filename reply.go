package socks

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/virgilproxy/socks/socks4"
	"github.com/virgilproxy/socks/socks5"
)

// ReplyCode is the outcome of a request, independent of the protocol. Each
// protocol maps it to its own wire value: see SOCKS5Code, SOCKS4Code and
// HTTPStatus.
type ReplyCode uint8

// Reply codes. The first nine have the values of RFC 1928's REP field.
const (
	ReplySucceeded               ReplyCode = 0  // the request was granted
	ReplyGeneralFailure          ReplyCode = 1  // general SOCKS server failure
	ReplyNotAllowed              ReplyCode = 2  // connection not allowed by ruleset
	ReplyNetworkUnreachable      ReplyCode = 3  // network unreachable
	ReplyHostUnreachable         ReplyCode = 4  // host unreachable, or its name did not resolve
	ReplyConnectionRefused       ReplyCode = 5  // connection refused
	ReplyTTLExpired              ReplyCode = 6  // TTL expired: the connect timed out
	ReplyCommandNotSupported     ReplyCode = 7  // command not supported
	ReplyAddressTypeNotSupported ReplyCode = 8  // address type not supported
	ReplyAuthFailed              ReplyCode = 16 // authentication required or failed
	ReplyIdentUnreachable        ReplyCode = 17 // the client's identd could not be reached (SOCKS4 92)
	ReplyIdentMismatch           ReplyCode = 18 // identd's user differs from the SOCKS4 USERID (SOCKS4 93)
)

var replyNames = [...]string{
	ReplySucceeded:               "succeeded",
	ReplyGeneralFailure:          "general failure",
	ReplyNotAllowed:              "not allowed by ruleset",
	ReplyNetworkUnreachable:      "network unreachable",
	ReplyHostUnreachable:         "host unreachable",
	ReplyConnectionRefused:       "connection refused",
	ReplyTTLExpired:              "TTL expired",
	ReplyCommandNotSupported:     "command not supported",
	ReplyAddressTypeNotSupported: "address type not supported",
	ReplyAuthFailed:              "authentication failed",
	ReplyIdentUnreachable:        "identd unreachable",
	ReplyIdentMismatch:           "identd user mismatch",
}

// String describes the code in words.
func (c ReplyCode) String() string {
	if int(c) < len(replyNames) && replyNames[c] != "" {
		return replyNames[c]
	}
	return "reply(" + strconv.Itoa(int(c)) + ")"
}

// SOCKS5Code returns the RFC 1928 REP value for c.
func (c ReplyCode) SOCKS5Code() socks5.ReplyCode {
	switch {
	case c <= ReplyAddressTypeNotSupported:
		return socks5.ReplyCode(c)
	case c == ReplyAuthFailed, c == ReplyIdentMismatch, c == ReplyIdentUnreachable:
		return socks5.ReplyNotAllowed
	}
	return socks5.ReplyGeneralFailure
}

// SOCKS4Code returns the SOCKS4 CD value for c: 90 on success, 92 and 93 for
// the ident failures, 91 for every other failure.
func (c ReplyCode) SOCKS4Code() socks4.ReplyCode {
	switch c {
	case ReplySucceeded:
		return socks4.ReplyGranted
	case ReplyIdentUnreachable:
		return socks4.ReplyNoIdentd
	case ReplyIdentMismatch:
		return socks4.ReplyIdentMismatch
	}
	return socks4.ReplyRejected
}

// HTTPStatus returns the HTTP status code for c: 200, 403 (not allowed),
// 407 (authentication), 504 (timeout), 501 (command not supported), 502
// for the other failures to reach the destination, 500 otherwise.
func (c ReplyCode) HTTPStatus() int {
	switch c {
	case ReplySucceeded:
		return 200
	case ReplyNotAllowed, ReplyIdentUnreachable, ReplyIdentMismatch:
		return 403
	case ReplyAuthFailed:
		return 407
	case ReplyTTLExpired:
		return 504
	case ReplyCommandNotSupported:
		return 501
	case ReplyNetworkUnreachable, ReplyHostUnreachable, ReplyConnectionRefused, ReplyAddressTypeNotSupported:
		return 502
	}
	return 500
}

// ReplyError is an error that carries the reply a client should get. A
// Handler that returns one without having replied gets that reply written
// for it. A Dialer that fails because an upstream proxy refused returns
// one too, so that the code travels down a chain of proxies.
type ReplyError struct {
	Code ReplyCode
	Err  error // the cause; may be nil
}

func (e *ReplyError) Error() string {
	if e.Err == nil {
		return "socks: " + e.Code.String()
	}
	return "socks: " + e.Code.String() + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *ReplyError) Unwrap() error { return e.Err }

// ReplyCodeFor returns the reply code for an error from dialing a
// destination. It looks through wrapped errors: a *ReplyError keeps its
// code; ECONNREFUSED and ECONNRESET give ReplyConnectionRefused; ENETUNREACH
// and ENETDOWN ReplyNetworkUnreachable; EHOSTUNREACH, EHOSTDOWN and a name
// that does not resolve ReplyHostUnreachable; a timeout ReplyTTLExpired
// (as Dante answers); EAFNOSUPPORT ReplyAddressTypeNotSupported; anything
// else ReplyGeneralFailure. A nil error gives ReplySucceeded.
func ReplyCodeFor(err error) ReplyCode {
	if err == nil {
		return ReplySucceeded
	}
	var re *ReplyError
	if errors.As(err, &re) {
		return re.Code
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return ReplyConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN):
		return ReplyNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return ReplyHostUnreachable
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return ReplyTTLExpired
		}
		return ReplyHostUnreachable
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ReplyTTLExpired
	case errors.Is(err, syscall.EAFNOSUPPORT):
		return ReplyAddressTypeNotSupported
	}
	return ReplyGeneralFailure
}
