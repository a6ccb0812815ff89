package httpconnect

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Request is a parsed CONNECT request.
type Request struct {
	Method string // as sent; only "CONNECT" is accepted by ReadRequest (others give 405)
	Target string // authority form, "host:port" as sent (IPv6 in brackets)
	Host   string // host part, brackets removed
	Port   uint16
	Proto  string // "HTTP/1.1" or "HTTP/1.0"

	// Username and Password are the Basic credentials from the
	// Proxy-Authorization header (the password may contain colons, the
	// user name cannot).
	Username, Password string
	// HasCredentials reports that exactly one Proxy-Authorization header
	// was present and held well-formed Basic credentials.
	HasCredentials bool
	UserAgent      string // the first User-Agent header's value, or ""
}

// ReadRequest reads a request line and header block from br. It reads no
// byte past the blank line that ends the header block (bytes after it stay
// buffered in br: they belong to the tunnel).
//
// maxHeaderBytes caps the whole header block, line endings included; zero
// or less means DefaultMaxHeaderBytes. Input that deserves an HTTP error
// response gives a *StatusError: 431 when the cap is passed, 400 for a
// malformed request line or header line, an invalid target (not host:port
// with a port in 1-65535, an empty host, a character not allowed in a host)
// or obsolete line folding, 405 for a method other than CONNECT and 505 for
// an HTTP version other than 1.0 and 1.1. I/O errors are returned as they
// are: io.EOF when the stream ends before the request (leading blank lines
// aside), io.ErrUnexpectedEOF when it ends inside it. On error the Request
// is nil.
func ReadRequest(br *bufio.Reader, maxHeaderBytes int) (*Request, error) {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = DefaultMaxHeaderBytes
	}
	lr := lineReader{br: br, remaining: maxHeaderBytes}

	// Request line, after any empty lines.
	var line []byte
	for {
		var err error
		line, err = lr.next()
		if err == errTooLarge {
			return nil, tooLarge(maxHeaderBytes)
		}
		if err != nil {
			return nil, err
		}
		if len(line) > 0 {
			break
		}
	}
	req := new(Request)
	// deferred is an error about a well-formed request line, returned once
	// the header block has been read.
	deferred := parseRequestLine(line, req)
	if deferred != nil && deferred.Status == 400 && req.Method == "" {
		return nil, deferred // not HTTP: stop now
	}

	authCount := 0
	uaSeen := false
	for {
		line, err := lr.next()
		if err != nil {
			if err == errTooLarge {
				if deferred != nil {
					return nil, deferred
				}
				return nil, tooLarge(maxHeaderBytes)
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, firstOf(deferred, badRequest("obsolete line folding"))
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return nil, firstOf(deferred, badRequest("header line without a colon"))
		}
		name := line[:colon]
		if !isToken(name) {
			return nil, firstOf(deferred, badRequest("invalid header name "+strconv.Quote(string(name))))
		}
		value := trimOWS(line[colon+1:])
		if i := badFieldByte(value); i >= 0 {
			return nil, firstOf(deferred, badRequest("control character "+strconv.QuoteRune(rune(value[i]))+" in header "+string(name)))
		}
		if deferred != nil {
			continue
		}
		switch {
		case asciiEqualFold(name, "Proxy-Authorization"):
			authCount++
			if authCount == 1 {
				req.Username, req.Password, req.HasCredentials = parseBasic(value)
			} else {
				req.Username, req.Password, req.HasCredentials = "", "", false
			}
		case asciiEqualFold(name, "User-Agent"):
			if !uaSeen {
				uaSeen = true
				req.UserAgent = string(value)
			}
		}
	}
	if deferred != nil {
		return nil, deferred
	}
	return req, nil
}

// parseRequestLine fills req.Method, Target, Host, Port and Proto from
// line. It returns a 400 with req.Method unset for a line that is not an
// HTTP request line, and an error with req.Method set for a well-formed
// request line that cannot be served.
func parseRequestLine(line []byte, req *Request) *StatusError {
	for _, c := range line {
		if byteClass[c]&classCTL != 0 {
			return badRequest("control character " + strconv.QuoteRune(rune(c)) + " in request line")
		}
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return badRequest("malformed request line")
	}
	method, rest := line[:sp1], line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return badRequest("malformed request line")
	}
	target, proto := rest[:sp2], rest[sp2+1:]
	if !isToken(method) || len(target) == 0 || !isHTTPVersion(proto) {
		return badRequest("malformed request line")
	}

	if string(method) == "CONNECT" {
		req.Method = "CONNECT" // no allocation
	} else {
		req.Method = string(method)
	}
	switch string(proto) {
	case "HTTP/1.1":
		req.Proto = "HTTP/1.1"
	case "HTTP/1.0":
		req.Proto = "HTTP/1.0"
	default:
		return &StatusError{Status: 505, Reason: "HTTP version " + string(proto) + " not supported"}
	}
	if req.Method != "CONNECT" {
		return &StatusError{Status: 405, Reason: "method " + strconv.Quote(req.Method) + " not allowed: this proxy only tunnels with CONNECT"}
	}
	// One allocation: Host is a substring of Target.
	t := string(target)
	host, port, err := ParseTarget(t)
	if err != nil {
		return err.(*StatusError)
	}
	req.Target, req.Host = t, host
	req.Port = port
	return nil
}

// ParseTarget splits a CONNECT target in authority form ("host:port", with
// an IPv6 address in brackets) into its host, brackets removed, and port.
// The host is a reg-name (RFC 3986: letters, digits, "-._~!$&'()*+,;=",
// percent-encoded bytes and, as Go's net/url allows, bytes >= 0x80), an IPv4
// address, or a bracketed IPv6 address without a zone; the port is decimal,
// 1 to 65535. The error is a *StatusError with status 400.
func ParseTarget(target string) (host string, port uint16, err error) {
	var portStr string
	if strings.HasPrefix(target, "[") {
		end := strings.IndexByte(target, ']')
		if end < 0 {
			return "", 0, badRequest("target " + strconv.Quote(target) + ": missing ']'")
		}
		host = target[1:end]
		rest := target[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return "", 0, badRequest("target " + strconv.Quote(target) + ": missing port")
		}
		portStr = rest[1:]
		addr, perr := netip.ParseAddr(host)
		if perr != nil || !addr.Is6() || addr.Zone() != "" {
			return "", 0, badRequest("target " + strconv.Quote(target) + ": invalid IPv6 address")
		}
	} else {
		i := strings.LastIndexByte(target, ':')
		if i < 0 {
			return "", 0, badRequest("target " + strconv.Quote(target) + ": missing port")
		}
		host, portStr = target[:i], target[i+1:]
		if host == "" {
			return "", 0, badRequest("target " + strconv.Quote(target) + ": empty host")
		}
		for j := 0; j < len(host); j++ {
			c := host[j]
			if byteClass[c]&classRegName == 0 {
				return "", 0, badRequest("target " + strconv.Quote(target) + ": invalid character " + strconv.QuoteRune(rune(c)) + " in host")
			}
			if c == '%' && (j+2 >= len(host) || !isHex(host[j+1]) || !isHex(host[j+2])) {
				return "", 0, badRequest("target " + strconv.Quote(target) + ": invalid percent-encoding in host")
			}
		}
	}
	p, ok := parsePort(portStr)
	if !ok {
		return "", 0, badRequest("target " + strconv.Quote(target) + ": invalid port")
	}
	return host, p, nil
}

// parsePort parses a decimal port in 1..65535 (at most 5 digits).
func parsePort(s string) (uint16, bool) {
	if len(s) == 0 || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < 1 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// maxStackCredentials bounds decoded Basic credentials kept on the stack; longer
// ones (bounded by the header cap) are decoded into the heap.
const maxStackCredentials = 512

// parseBasic parses a Basic Proxy-Authorization value (RFC 7617):
// "Basic" (any case), spaces, then base64 (standard alphabet, padded) of
// "user:password". User and password must not contain control characters.
// ok is false for anything else.
func parseBasic(v []byte) (user, password string, ok bool) {
	const scheme = "basic"
	if len(v) <= len(scheme) || !asciiEqualFold(v[:len(scheme)], scheme) || v[len(scheme)] != ' ' {
		return "", "", false
	}
	tok := v[len(scheme):]
	for len(tok) > 0 && tok[0] == ' ' {
		tok = tok[1:]
	}
	if len(tok) == 0 || bytes.ContainsAny(tok, " \t") {
		return "", "", false
	}
	var stack [maxStackCredentials]byte
	dst := stack[:]
	if n := base64.StdEncoding.DecodedLen(len(tok)); n > len(dst) {
		dst = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(dst, tok)
	if err != nil {
		return "", "", false
	}
	dec := dst[:n]
	colon := bytes.IndexByte(dec, ':')
	if colon < 0 {
		return "", "", false
	}
	for _, c := range dec {
		if byteClass[c]&classCTL != 0 {
			return "", "", false
		}
	}
	s := string(dec) // one allocation for both
	return s[:colon], s[colon+1:], true
}

// asciiEqualFold reports whether b equals s, ignoring ASCII case.
func asciiEqualFold[T string | []byte](b T, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

func badRequest(reason string) *StatusError {
	return &StatusError{Status: 400, Reason: reason}
}

func tooLarge(max int) *StatusError {
	return &StatusError{Status: 431, Reason: "header block larger than " + strconv.Itoa(max) + " bytes"}
}

// firstOf returns a if it is set, else b.
func firstOf(a, b *StatusError) *StatusError {
	if a != nil {
		return a
	}
	return b
}

// AppendResponse appends a response header block to b:
// "HTTP/1.1 <status> <text>\r\n", the headers, and for a status outside
// 2xx "Connection: close\r\nContent-Length: 0\r\n", then "\r\n". After a
// 2xx answer to CONNECT the connection is a tunnel, so no Content-Length is
// sent then (RFC 9110 section 9.3.6 forbids it).
//
// A status outside 100-999 is written as 500. A header whose name is not a
// valid token is left out, and control characters other than HTAB in a
// value are written as spaces, so that no input can split the response.
// AppendResponse allocates nothing when b has room.
func AppendResponse(b []byte, status int, headers ...Header) []byte {
	if status < 100 || status > 999 {
		status = 500
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, StatusText(status)...)
	b = append(b, "\r\n"...)
	b = appendHeaders(b, headers)
	if status/100 != 2 {
		b = append(b, "Connection: close\r\nContent-Length: 0\r\n"...)
	}
	return append(b, "\r\n"...)
}

// appendHeaders writes headers, leaving out invalid names and replacing
// control characters in values.
func appendHeaders(b []byte, headers []Header) []byte {
	for _, h := range headers {
		if !isTokenString(h.Name) {
			continue
		}
		b = append(b, h.Name...)
		b = append(b, ": "...)
		for i := 0; i < len(h.Value); i++ {
			c := h.Value[i]
			if byteClass[c]&classCTL != 0 && c != '\t' {
				c = ' '
			}
			b = append(b, c)
		}
		b = append(b, "\r\n"...)
	}
	return b
}

func isTokenString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if byteClass[s[i]]&classToken == 0 {
			return false
		}
	}
	return true
}

// ProxyAuthenticate returns the header that goes with a 407 answer:
// Proxy-Authenticate: Basic realm="<realm>", with '"' and '\' in the realm
// escaped and control characters written as spaces.
func ProxyAuthenticate(realm string) Header {
	var sb strings.Builder
	sb.Grow(len(`Basic realm=""`) + len(realm) + 8)
	sb.WriteString(`Basic realm="`)
	for i := 0; i < len(realm); i++ {
		c := realm[i]
		switch {
		case c == '"' || c == '\\':
			sb.WriteByte('\\')
		case byteClass[c]&classCTL != 0:
			c = ' '
		}
		sb.WriteByte(c)
	}
	sb.WriteByte('"')
	return Header{Name: "Proxy-Authenticate", Value: sb.String()}
}
