// Package httpconnect is a wire codec for HTTP CONNECT proxying
// (RFC 9110 section 9.3.6, message syntax from RFC 9112), for both sides of
// a connection.
//
// A server calls [ReadRequest] and writes its answer with [AppendResponse]
// (200 and then the tunnel, or an error status; [ProxyAuthenticate] makes
// the header that goes with 407). A client writes with [AppendRequest] and
// reads the answer with [ReadResponse]. The package never dials, verifies a
// password or decides policy: it parses the request line and the few
// headers a proxy needs (Proxy-Authorization: Basic, User-Agent) and hands
// back plain values. It is not a forwarding web proxy: every method other
// than CONNECT is refused with 405.
//
// # Reading
//
// The readers take a *bufio.Reader and read line by line with ReadSlice, so
// they consume exactly the header block: bytes the client sent after the
// blank line belong to the tunnel and stay buffered in the reader. No
// http.Header map is built and only the values returned are allocated; a
// typical CONNECT request costs three small allocations (the Request, the
// target and the User-Agent value).
//
// The header block (the request or status line, the header lines and the
// blank line that ends them, line endings included) is capped, by default at
// [DefaultMaxHeaderBytes]. A line longer than the bufio.Reader's buffer is
// still handled: it is collected, in a buffer that never grows past what is
// left of the cap, so any reader size works, down to bufio's minimum of 16
// bytes. Reading stops as soon as the cap is passed, with 431 (a server) or
// [ErrHeaderTooLarge] (a client); at most one bufio buffer beyond the cap is
// ever read from the connection.
//
// Lines may end in CRLF or a bare LF. Header names are compared without
// regard to case. A bare CR, a NUL or any other control character (except
// HTAB in header values), obsolete line folding in a request, and a space
// before a header's colon are refused (RFC 9112 sections 2.2, 5.1, 5.2).
// Empty lines before the request line are skipped (RFC 9112 section 2.2).
//
// # Server-side choices
//
// When the request line is well formed but cannot be served (a method other
// than CONNECT, an HTTP version other than 1.0 and 1.1, an invalid target),
// ReadRequest still reads the rest of the header block, up to the cap,
// before it returns the error, so that the server can answer and close
// without the kernel resetting the connection over unread input. A request
// line or header line that is not HTTP at all ends reading at once.
//
// A Host header is neither required nor compared with the target: clients
// such as Dante's send CONNECT with HTTP/1.0 and no Host header. A
// Proxy-Authorization header that is not well-formed Basic credentials, or
// that appears more than once, counts as no credentials (the server then
// answers 407); it is never an error by itself.
//
// Errors that deserve an HTTP answer are returned as *[StatusError], which
// unwraps to one of [ErrBadRequest], [ErrMethodNotAllowed],
// [ErrHeaderTooLarge] or [ErrVersionNotSupported]. I/O errors (io.EOF,
// timeouts, ...) are returned as they are; a stream that ends inside the
// header block gives io.ErrUnexpectedEOF.
package httpconnect

import (
	"errors"
	"strconv"
)

// DefaultMaxHeaderBytes is the cap on the header block that ReadRequest and
// ReadResponse use when given a cap of zero or less.
const DefaultMaxHeaderBytes = 64 << 10

// Errors this package returns (wrapped, or through StatusError.Unwrap); test
// with errors.Is.
var (
	// ErrBadRequest: a malformed request (status 400).
	ErrBadRequest = errors.New("httpconnect: bad request")
	// ErrMethodNotAllowed: a well-formed request with a method other than
	// CONNECT (status 405).
	ErrMethodNotAllowed = errors.New("httpconnect: method not allowed")
	// ErrHeaderTooLarge: the header block is larger than the cap
	// (status 431 for a request).
	ErrHeaderTooLarge = errors.New("httpconnect: header block too large")
	// ErrVersionNotSupported: an HTTP version other than 1.0 and 1.1
	// (status 505).
	ErrVersionNotSupported = errors.New("httpconnect: HTTP version not supported")
	// ErrMalformedResponse: ReadResponse met something that is not an
	// HTTP/1.x response header block.
	ErrMalformedResponse = errors.New("httpconnect: malformed response")
)

// StatusError is returned by ReadRequest for input that deserves an HTTP
// error response: write AppendResponse(b, e.Status) and close.
type StatusError struct {
	Status int    // the HTTP status to answer with
	Reason string // what was wrong, for logs (not for the client)
}

// Error returns "httpconnect: <status> <status text>: <reason>".
func (e *StatusError) Error() string {
	return "httpconnect: " + strconv.Itoa(e.Status) + " " + StatusText(e.Status) + ": " + e.Reason
}

// Unwrap returns the sentinel error that matches e.Status (ErrBadRequest,
// ErrMethodNotAllowed, ErrHeaderTooLarge, ErrVersionNotSupported), or nil.
func (e *StatusError) Unwrap() error {
	switch e.Status {
	case 400:
		return ErrBadRequest
	case 405:
		return ErrMethodNotAllowed
	case 431:
		return ErrHeaderTooLarge
	case 505:
		return ErrVersionNotSupported
	}
	return nil
}

// Header is one header field.
type Header struct {
	Name, Value string
}

// StatusText returns the reason phrase for the status codes a proxy uses
// (RFC 9110 section 15 and RFC 6585), or "" for others.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 407:
		return "Proxy Authentication Required"
	case 408:
		return "Request Timeout"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return ""
}
