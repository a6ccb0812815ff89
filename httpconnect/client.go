package httpconnect

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
)

// AppendRequest appends a CONNECT request for target ("host:port", an IPv6
// host in brackets, as net.JoinHostPort makes it) to b:
//
//	CONNECT <target> HTTP/1.1
//	Host: <target>
//	Proxy-Authorization: Basic base64(<username>:<password>)   (only if useAuth)
//	<headers>
//
// and the blank line. Bytes of target that cannot appear in a request line
// (control characters, space, DEL) are percent-encoded, so that no target can
// inject a header; a proxy will refuse such a target anyway. A username
// containing ':' cannot be represented in Basic credentials (the proxy
// splits at the first colon). Headers are written as AppendResponse writes
// them (invalid names left out, control characters in values written as
// spaces). AppendRequest allocates nothing when b has room and the
// credentials are shorter than 512 bytes.
func AppendRequest(b []byte, target string, username, password string, useAuth bool, headers ...Header) []byte {
	b = append(b, "CONNECT "...)
	b = appendTarget(b, target)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = appendTarget(b, target)
	b = append(b, "\r\n"...)
	if useAuth {
		b = append(b, "Proxy-Authorization: Basic "...)
		var stack [maxStackCredentials]byte
		cred := stack[:0]
		if n := len(username) + 1 + len(password); n > len(stack) {
			cred = make([]byte, 0, n)
		}
		cred = append(cred, username...)
		cred = append(cred, ':')
		cred = append(cred, password...)
		b = base64.StdEncoding.AppendEncode(b, cred)
		clear(cred) // do not leave the password on the stack or heap longer than needed
		b = append(b, "\r\n"...)
	}
	b = appendHeaders(b, headers)
	return append(b, "\r\n"...)
}

// appendTarget writes target, percent-encoding control characters, space
// and DEL.
func appendTarget(b []byte, target string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c <= ' ' || c == 0x7f {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// Response is a parsed response header block.
type Response struct {
	Proto  string // "HTTP/1.1", "HTTP/1.0", or another HTTP/x.y as sent
	Status int    // three digits, 100-999
	Reason string // the reason phrase, possibly empty
	Header []Header
}

// Get returns the value of the first header named name (compared without
// regard to ASCII case), or "".
func (r *Response) Get(name string) string {
	for _, h := range r.Header {
		if asciiEqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// ReadResponse reads a status line and header block from br: exactly
// through the blank line, nothing more. A 2xx answer to CONNECT means the
// tunnel is open and every byte after it belongs to the tunnel; any other
// answer may carry a body (for example the HTML page of a 407), which
// ReadResponse leaves unread.
//
// maxHeaderBytes caps the header block as in ReadRequest (zero or less
// means DefaultMaxHeaderBytes); passing it gives an error wrapping
// ErrHeaderTooLarge. Input that is not an HTTP/x.y response gives an error
// wrapping ErrMalformedResponse. Header lines folded the obsolete way are
// joined to the previous header with one space, as RFC 9112 section 5.2 asks
// of a user agent. I/O errors are returned as they are: io.EOF when the
// stream ends before the response, io.ErrUnexpectedEOF inside it.
func ReadResponse(br *bufio.Reader, maxHeaderBytes int) (*Response, error) {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = DefaultMaxHeaderBytes
	}
	lr := lineReader{br: br, remaining: maxHeaderBytes}
	tooLargeErr := func() error {
		return fmt.Errorf("%w (limit %d bytes)", ErrHeaderTooLarge, maxHeaderBytes)
	}

	line, err := lr.next()
	if err == errTooLarge {
		return nil, tooLargeErr()
	}
	if err != nil {
		return nil, err
	}
	resp := new(Response)
	if err := parseStatusLine(line, resp); err != nil {
		return nil, err
	}
	// pending is the current header line, "name:value", kept until the
	// next line shows whether folded continuation lines extend it. Folding
	// appends in place, so a flood of continuation lines costs linear time.
	var stack [256]byte
	pending := stack[:0]
	colon := -1 // index of the colon in pending; -1: nothing pending
	for {
		line, err := lr.next()
		if err != nil {
			if err == errTooLarge {
				return nil, tooLargeErr()
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if colon < 0 {
				return nil, fmt.Errorf("%w: continuation line before the first header", ErrMalformedResponse)
			}
			if i := badFieldByte(line); i >= 0 {
				return nil, fmt.Errorf("%w: control character %q in header line", ErrMalformedResponse, line[i])
			}
			if more := trimOWS(line); len(more) > 0 {
				if len(trimOWS(pending[colon+1:])) == 0 {
					pending = append(pending[:colon+1], more...)
				} else {
					pending = append(append(pending, ' '), more...)
				}
			}
			continue
		}
		if colon >= 0 {
			s := string(pending) // one allocation per header: Name and Value are substrings
			resp.Header = append(resp.Header, Header{Name: s[:colon], Value: trimOWSString(s[colon+1:])})
			colon = -1
		}
		if len(line) == 0 {
			return resp, nil
		}
		if i := badFieldByte(line); i >= 0 {
			return nil, fmt.Errorf("%w: control character %q in header line", ErrMalformedResponse, line[i])
		}
		c := bytes.IndexByte(line, ':')
		if c < 0 {
			return nil, fmt.Errorf("%w: header line without a colon", ErrMalformedResponse)
		}
		if !isToken(line[:c]) {
			return nil, fmt.Errorf("%w: invalid header name %q", ErrMalformedResponse, line[:c])
		}
		pending = append(pending[:0], line...)
		colon = c
	}
}

// parseStatusLine parses HTTP/x.y SP 3DIGIT [SP reason] (a missing SP
// before an empty reason is tolerated).
func parseStatusLine(line []byte, resp *Response) error {
	if len(line) < 12 || !isHTTPVersion(line[:8]) || line[8] != ' ' ||
		!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || line[9] == '0' {
		return fmt.Errorf("%w: status line %q", ErrMalformedResponse, truncate(line, 64))
	}
	reason := line[12:]
	if len(reason) > 0 {
		if reason[0] != ' ' {
			return fmt.Errorf("%w: status line %q", ErrMalformedResponse, truncate(line, 64))
		}
		reason = reason[1:]
	}
	if i := badFieldByte(reason); i >= 0 {
		return fmt.Errorf("%w: control character %q in reason phrase", ErrMalformedResponse, reason[i])
	}
	switch string(line[:8]) {
	case "HTTP/1.1":
		resp.Proto = "HTTP/1.1"
	case "HTTP/1.0":
		resp.Proto = "HTTP/1.0"
	default:
		resp.Proto = string(line[:8])
	}
	resp.Status, _ = strconv.Atoi(string(line[9:12]))
	switch {
	case len(reason) == 0:
	case string(reason) == "OK":
		resp.Reason = "OK"
	default:
		resp.Reason = string(reason)
	}
	return nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func trimOWSString(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
