package httpconnect

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// readers returns the ways the tests feed input to the decoders: a default
// bufio buffer (4096 bytes), the smallest one (16 bytes), and one byte per
// Read.
func readers(data string) map[string]*bufio.Reader {
	return map[string]*bufio.Reader{
		"default": bufio.NewReader(strings.NewReader(data)),
		"tiny":    bufio.NewReaderSize(strings.NewReader(data), 16),
		"onebyte": bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(data)), 16),
	}
}

// rest returns what is left in br.
func rest(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	b, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading the rest: %v", err)
	}
	return string(b)
}

func basic(userpass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userpass))
}

const curlRequest = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: curl/8.0\r\nProxy-Connection: Keep-Alive\r\n\r\n"

func TestReadRequest(t *testing.T) {
	type test struct {
		name       string
		in         string
		max        int
		want       *Request
		wantStatus int   // a *StatusError with this status
		wantErr    error // else this error (nil: success)
		wantInErr  string
		after      string // left in the reader when the header block was read
	}
	curl := &Request{Method: "CONNECT", Target: "example.com:443", Host: "example.com", Port: 443, Proto: "HTTP/1.1", UserAgent: "curl/8.0"}
	tests := []test{
		{name: "curl", in: curlRequest, want: curl},
		{name: "tunnel bytes stay", in: curlRequest + "HELLO", want: curl, after: "HELLO"},
		{name: "tls client hello after", in: curlRequest + "\x16\x03\x01\x00\x05hello\r\n\r\n", want: curl, after: "\x16\x03\x01\x00\x05hello\r\n\r\n"},
		{
			name: "dante client",
			in:   "CONNECT 192.0.2.1:80 HTTP/1.0\r\nUser-agent: Dante/client v1.4.2\r\n\r\n",
			want: &Request{Method: "CONNECT", Target: "192.0.2.1:80", Host: "192.0.2.1", Port: 80, Proto: "HTTP/1.0", UserAgent: "Dante/client v1.4.2"},
		},
		{
			name:  "bare LF line endings",
			in:    "CONNECT example.com:443 HTTP/1.1\nHost: example.com:443\nUser-Agent: curl/8.0\n\nX",
			want:  curl,
			after: "X",
		},
		{
			name: "ipv6 target",
			in:   "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
			want: &Request{Method: "CONNECT", Target: "[::1]:443", Host: "::1", Port: 443, Proto: "HTTP/1.1"},
		},
		{
			name: "no headers at all",
			in:   "CONNECT a:1 HTTP/1.0\r\n\r\n",
			want: &Request{Method: "CONNECT", Target: "a:1", Host: "a", Port: 1, Proto: "HTTP/1.0"},
		},
		{
			name: "leading blank lines skipped",
			in:   "\r\n\n" + curlRequest,
			want: curl,
		},
		{
			name: "basic credentials with colon in password",
			in:   "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: " + basic("alice:p:ss") + "\r\n\r\n",
			want: &Request{Method: "CONNECT", Target: "example.com:443", Host: "example.com", Port: 443, Proto: "HTTP/1.1", Username: "alice", Password: "p:ss", HasCredentials: true},
		},
		{
			name: "header name and scheme case-insensitive, extra spaces",
			in:   "CONNECT example.com:443 HTTP/1.1\r\nproxy-AUTHORIZATION:   bAsIc   " + base64.StdEncoding.EncodeToString([]byte("bob:secret")) + "  \r\nuser-agent:\tx/1\t\r\n\r\n",
			want: &Request{Method: "CONNECT", Target: "example.com:443", Host: "example.com", Port: 443, Proto: "HTTP/1.1", Username: "bob", Password: "secret", HasCredentials: true, UserAgent: "x/1"},
		},
		{
			name: "empty user and password are well-formed",
			in:   "CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: " + basic(":") + "\r\n\r\n",
			want: &Request{Method: "CONNECT", Target: "h:1", Host: "h", Port: 1, Proto: "HTTP/1.1", HasCredentials: true},
		},
		{
			name: "utf-8 credentials",
			in:   "CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: " + basic("jürgen:pässwört") + "\r\n\r\n",
			want: &Request{Method: "CONNECT", Target: "h:1", Host: "h", Port: 1, Proto: "HTTP/1.1", Username: "jürgen", Password: "pässwört", HasCredentials: true},
		},
		{
			name: "long credentials decoded off the stack",
			in:   "CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: " + basic("u:"+strings.Repeat("p", 2000)) + "\r\n\r\n",
			want: &Request{Method: "CONNECT", Target: "h:1", Host: "h", Port: 1, Proto: "HTTP/1.1", Username: "u", Password: strings.Repeat("p", 2000), HasCredentials: true},
		},
		{
			name: "first user agent wins",
			in:   "CONNECT h:1 HTTP/1.1\r\nUser-Agent: one\r\nUser-Agent: two\r\n\r\n",
			want: &Request{Method: "CONNECT", Target: "h:1", Host: "h", Port: 1, Proto: "HTTP/1.1", UserAgent: "one"},
		},
		{
			name:  "long header line longer than any tiny buffer",
			in:    "CONNECT h:1 HTTP/1.1\r\nUser-Agent: " + strings.Repeat("a", 5000) + "\r\n\r\nT",
			want:  &Request{Method: "CONNECT", Target: "h:1", Host: "h", Port: 1, Proto: "HTTP/1.1", UserAgent: strings.Repeat("a", 5000)},
			after: "T",
		},
		{
			name: "header block exactly at the cap",
			in:   "CONNECT h:1 HTTP/1.1\r\nX: 12345\r\n\r\n",
			max:  len("CONNECT h:1 HTTP/1.1\r\nX: 12345\r\n\r\n"),
			want: &Request{Method: "CONNECT", Target: "h:1", Host: "h", Port: 1, Proto: "HTTP/1.1"},
		},
		{name: "one byte over the cap", in: "CONNECT h:1 HTTP/1.1\r\nX: 12345\r\n\r\n", max: len("CONNECT h:1 HTTP/1.1\r\nX: 12345\r\n\r\n") - 1, wantStatus: 431},
		{name: "request line over the cap", in: "CONNECT " + strings.Repeat("a", 100) + ":1 HTTP/1.1\r\n\r\n", max: 64, wantStatus: 431},
		{name: "long line over the cap", in: "CONNECT h:1 HTTP/1.1\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", max: 4096, wantStatus: 431},
		{name: "405 with header over the cap", in: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 200) + "\r\n\r\n", max: 100, wantStatus: 405},
	}
	// Proxy-Authorization values that are not well-formed: no credentials, no error.
	for _, v := range []string{
		"Bearer abc",
		"Basic",
		"Basic ",
		"Basicxx " + base64.StdEncoding.EncodeToString([]byte("a:b")),
		"Basic !!!!",
		"Basic " + base64.RawStdEncoding.EncodeToString([]byte("alice:pw")), // unpadded
		basic("nocolon"),
		basic("ctl\x01:pw"),
		basic("a:b") + " extra",
		"Digest username=\"alice\"",
	} {
		tests = append(tests, test{
			name: "malformed auth " + v,
			in:   "CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: " + v + "\r\n\r\n",
			want: &Request{Method: "CONNECT", Target: "h:1", Host: "h", Port: 1, Proto: "HTTP/1.1"},
		})
	}
	tests = append(tests, test{
		name: "duplicate proxy-authorization",
		in:   "CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: " + basic("alice:pw") + "\r\nProxy-Authorization: " + basic("bob:pw") + "\r\n\r\n",
		want: &Request{Method: "CONNECT", Target: "h:1", Host: "h", Port: 1, Proto: "HTTP/1.1"},
	})
	// Status errors.
	for _, tt := range []struct {
		name, in string
		status   int
		inErr    string
	}{
		{"no port", "CONNECT example.com HTTP/1.1\r\n\r\n", 400, "missing port"},
		{"empty port", "CONNECT example.com: HTTP/1.1\r\n\r\n", 400, "invalid port"},
		{"port zero", "CONNECT example.com:0 HTTP/1.1\r\n\r\n", 400, "invalid port"},
		{"port too big", "CONNECT example.com:65536 HTTP/1.1\r\n\r\n", 400, "invalid port"},
		{"port not numeric", "CONNECT example.com:4a3 HTTP/1.1\r\n\r\n", 400, "invalid port"},
		{"port signed", "CONNECT example.com:+443 HTTP/1.1\r\n\r\n", 400, "invalid port"},
		{"empty host", "CONNECT :443 HTTP/1.1\r\n\r\n", 400, "empty host"},
		{"userinfo", "CONNECT user@host:443 HTTP/1.1\r\n\r\n", 400, "invalid character"},
		{"path", "CONNECT host/x:443 HTTP/1.1\r\n\r\n", 400, "invalid character"},
		{"origin form", "CONNECT / HTTP/1.1\r\n\r\n", 400, "missing port"},
		{"bad percent", "CONNECT ho%zzst:443 HTTP/1.1\r\n\r\n", 400, "percent"},
		{"unclosed bracket", "CONNECT [::1:443 HTTP/1.1\r\n\r\n", 400, "missing ']'"},
		{"bracket without port", "CONNECT [::1] HTTP/1.1\r\n\r\n", 400, "missing port"},
		{"ipv6 without brackets", "CONNECT ::1:443 HTTP/1.1\r\n\r\n", 400, "invalid character"},
		{"ipv4 in brackets", "CONNECT [1.2.3.4]:443 HTTP/1.1\r\n\r\n", 400, "invalid IPv6"},
		{"zone", "CONNECT [fe80::1%eth0]:443 HTTP/1.1\r\n\r\n", 400, "invalid IPv6"},
		{"space in target", "CONNECT exa mple.com:443 HTTP/1.1\r\n\r\n", 400, "malformed request line"},
		{"control char in target", "CONNECT exa\x01mple.com:443 HTTP/1.1\r\n\r\n", 400, "control character"},
		{"bare CR in target", "CONNECT exa\rmple.com:443 HTTP/1.1\r\n\r\n", 400, "control character"},
		{"NUL in request line", "CONNECT a:1\x00 HTTP/1.1\r\n\r\n", 400, "control character"},
		{"double space", "CONNECT  a:1 HTTP/1.1\r\n\r\n", 400, "malformed request line"},
		{"two parts", "CONNECT a:1\r\n\r\n", 400, "malformed request line"},
		{"one part", "CONNECT\r\n\r\n", 400, "malformed request line"},
		{"lower-case version", "CONNECT a:1 http/1.1\r\n\r\n", 400, "malformed request line"},
		{"trailing space", "CONNECT a:1 HTTP/1.1 \r\n\r\n", 400, "malformed request line"},
		{"binary", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", 400, ""},
		{"socks5", "\x05\x01\x00\n", 400, ""},
		{"header without colon", "CONNECT a:1 HTTP/1.1\r\nBad Header\r\n\r\n", 400, "without a colon"},
		{"space before colon", "CONNECT a:1 HTTP/1.1\r\nHost : a:1\r\n\r\n", 400, "invalid header name"},
		{"empty header name", "CONNECT a:1 HTTP/1.1\r\n: x\r\n\r\n", 400, "invalid header name"},
		{"obs-fold", "CONNECT a:1 HTTP/1.1\r\nUser-Agent: a\r\n b\r\n\r\n", 400, "folding"},
		{"obs-fold tab", "CONNECT a:1 HTTP/1.1\r\nUser-Agent: a\r\n\tb\r\n\r\n", 400, "folding"},
		{"bare CR in value", "CONNECT a:1 HTTP/1.1\r\nX: a\rb\r\n\r\n", 400, "control character"},
		{"NUL in value", "CONNECT a:1 HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400, "control character"},
		{"GET", "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 405, `"GET"`},
		{"lower-case connect", "connect a:1 HTTP/1.1\r\n\r\n", 405, `"connect"`},
		{"POST with bad target", "POST /x HTTP/1.0\r\n\r\n", 405, `"POST"`},
		{"HTTP/2.0", "CONNECT a:1 HTTP/2.0\r\n\r\n", 505, "HTTP/2.0"},
		{"HTTP/1.2", "CONNECT a:1 HTTP/1.2\r\n\r\n", 505, "HTTP/1.2"},
		{"HTTP/0.9", "CONNECT a:1 HTTP/0.9\r\n\r\n", 505, "HTTP/0.9"},
		{"bad header after GET reports 405", "GET / HTTP/1.1\r\nBad\r\n\r\n", 405, "GET"},
	} {
		tests = append(tests, test{name: tt.name, in: tt.in, wantStatus: tt.status, wantInErr: tt.inErr})
	}
	tests = append(tests,
		test{name: "GET drains the header block", in: "GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY", wantStatus: 405, after: "BODY"},
		test{name: "h2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", wantStatus: 505, after: "SM\r\n\r\n"},
		test{name: "empty input", in: "", wantErr: io.EOF},
		test{name: "only blank lines", in: "\r\n\r\n", wantErr: io.EOF},
		test{name: "cut in request line", in: "CONN", wantErr: io.ErrUnexpectedEOF},
		test{name: "cut after request line", in: "CONNECT a:1 HTTP/1.1\r\n", wantErr: io.ErrUnexpectedEOF},
		test{name: "cut in header", in: "CONNECT a:1 HTTP/1.1\r\nHost: a", wantErr: io.ErrUnexpectedEOF},
		test{name: "cut in final CRLF", in: "CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r", wantErr: io.ErrUnexpectedEOF},
		test{name: "cut after 405 line", in: "GET / HTTP/1.1\r\n", wantErr: io.ErrUnexpectedEOF},
	)

	for _, tt := range tests {
		for rname, br := range readers(tt.in) {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, err := ReadRequest(br, tt.max)
				if tt.wantStatus != 0 {
					var se *StatusError
					if !errors.As(err, &se) || se.Status != tt.wantStatus {
						t.Fatalf("err = %v, want status %d", err, tt.wantStatus)
					}
					if !strings.Contains(err.Error(), tt.wantInErr) {
						t.Errorf("error %q does not mention %q", err, tt.wantInErr)
					}
					if got != nil {
						t.Errorf("got a request with an error: %+v", got)
					}
				} else if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				} else {
					var se *StatusError
					if errors.As(err, &se) {
						t.Fatalf("I/O error returned as a StatusError: %v", err)
					}
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("request mismatch (-want +got):\n%s", diff)
				}
				if err == nil || tt.after != "" {
					if r := rest(t, br); r != tt.after {
						t.Errorf("left in reader %q, want %q", r, tt.after)
					}
				}
			})
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// endless repeats a pattern forever.
type endless struct {
	pattern string
	off     int
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.pattern[e.off]
		e.off = (e.off + 1) % len(e.pattern)
	}
	return len(p), nil
}

func TestHeaderFlood(t *testing.T) {
	const flood = 1 << 20
	for _, tt := range []struct {
		name string
		src  func() io.Reader
	}{
		{"many headers 1MiB", func() io.Reader {
			return io.MultiReader(strings.NewReader("CONNECT h:1 HTTP/1.1\r\n"), io.LimitReader(&endless{pattern: "X-Flood: aaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"}, flood))
		}},
		{"one endless header line", func() io.Reader {
			return io.MultiReader(strings.NewReader("CONNECT h:1 HTTP/1.1\r\nX: "), io.LimitReader(&endless{pattern: "a"}, flood))
		}},
		{"endless request line", func() io.Reader {
			return io.LimitReader(&endless{pattern: "CONNECTAAAAAAAAAAAAAAAAA"}, flood)
		}},
		{"endless blank lines", func() io.Reader {
			return io.LimitReader(&endless{pattern: "\r\n"}, flood)
		}},
		{"never-ending stream", func() io.Reader {
			return io.MultiReader(strings.NewReader("CONNECT h:1 HTTP/1.1\r\n"), &endless{pattern: "X: y\r\n"})
		}},
	} {
		for _, size := range []int{16, 4096} {
			cr := &countingReader{r: tt.src()}
			br := bufio.NewReaderSize(cr, size)
			_, err := ReadRequest(br, 0)
			var se *StatusError
			if !errors.As(err, &se) || se.Status != 431 || !errors.Is(err, ErrHeaderTooLarge) {
				t.Errorf("%s/%d: err = %v, want 431", tt.name, size, err)
			}
			if limit := DefaultMaxHeaderBytes + size; cr.n > limit {
				t.Errorf("%s/%d: read %d bytes, want at most %d", tt.name, size, cr.n, limit)
			}
		}
	}
}

// TestTruncatedRequest cuts requests at every offset: never a panic, never
// a request, and io.ErrUnexpectedEOF once anything was sent.
func TestTruncatedRequest(t *testing.T) {
	for _, full := range []string{
		curlRequest,
		"CONNECT [2001:db8::1]:8443 HTTP/1.0\nProxy-Authorization: " + basic("alice:p:ss") + "\n\n",
	} {
		for i := 0; i < len(full); i++ {
			for rname, br := range readers(full[:i]) {
				req, err := ReadRequest(br, 0)
				if err == nil || req != nil {
					t.Fatalf("%s: ReadRequest(%q) = %+v, %v; want an error", rname, full[:i], req, err)
				}
				if i > 0 && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("%s: ReadRequest(%q) = %v, want io.ErrUnexpectedEOF", rname, full[:i], err)
				}
			}
		}
	}
}

func TestReadRequestIOErrors(t *testing.T) {
	boom := errors.New("boom")
	br := bufio.NewReaderSize(io.MultiReader(strings.NewReader("CONNECT a:1 HTTP/1.1\r\nX: "), iotest.ErrReader(boom)), 16)
	if _, err := ReadRequest(br, 0); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error", err)
	}
	br = bufio.NewReaderSize(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader(curlRequest))), 16)
	if _, err := ReadRequest(br, 0); !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("err = %v, want iotest.ErrTimeout", err)
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port uint16
		ok   bool
	}{
		{"example.com:443", "example.com", 443, true},
		{"EXAMPLE.com:80", "EXAMPLE.com", 80, true},
		{"192.0.2.1:1", "192.0.2.1", 1, true},
		{"[2001:db8::1]:65535", "2001:db8::1", 65535, true},
		{"[::ffff:1.2.3.4]:8080", "::ffff:1.2.3.4", 8080, true},
		{"xn--bcher-kva.example:443", "xn--bcher-kva.example", 443, true},
		{"bücher.example:443", "bücher.example", 443, true},
		{"a%2Db:443", "a%2Db", 443, true},
		{"h:00443", "h", 443, true},
		{"h:000443", "", 0, false},
		{"h", "", 0, false},
		{":1", "", 0, false},
		{"h:", "", 0, false},
		{"", "", 0, false},
		{"[]:1", "", 0, false},
		{"[::1]x:1", "", 0, false},
		{"a:b:1", "", 0, false},
		{"a b:1", "", 0, false},
		{"a%4:1", "", 0, false},
		{"a#b:1", "", 0, false},
	}
	for _, tt := range tests {
		host, port, err := ParseTarget(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseTarget(%q) err = %v, want ok %v", tt.in, err, tt.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParseTarget(%q) err = %v, want ErrBadRequest", tt.in, err)
		}
		if host != tt.host || port != tt.port {
			t.Errorf("ParseTarget(%q) = %q, %d; want %q, %d", tt.in, host, port, tt.host, tt.port)
		}
	}
}

func TestAppendResponse(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		headers []Header
		want    string
	}{
		{"200", 200, nil, "HTTP/1.1 200 OK\r\n\r\n"},
		{"200 with header", 200, []Header{{"Proxy-Agent", "virgil"}}, "HTTP/1.1 200 OK\r\nProxy-Agent: virgil\r\n\r\n"},
		{"407", 407, []Header{ProxyAuthenticate("virgil")},
			"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"virgil\"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{"400", 400, nil, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{"405", 405, []Header{{"Allow", "CONNECT"}}, "HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{"431", 431, nil, "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{"502", 502, nil, "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{"unknown status, empty reason", 599, nil, "HTTP/1.1 599 \r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{"invalid status becomes 500", 42, nil, "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{"injection neutralised", 403, []Header{{"X-A", "v\r\nSet-Cookie: x"}, {"Bad\r\nName", "v"}, {"", "v"}},
			"HTTP/1.1 403 Forbidden\r\nX-A: v  Set-Cookie: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendResponse([]byte("x"), tt.status, tt.headers...)
			if diff := cmp.Diff("x"+tt.want, string(got)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProxyAuthenticate(t *testing.T) {
	tests := []struct{ realm, want string }{
		{"virgil", `Basic realm="virgil"`},
		{"", `Basic realm=""`},
		{`a "quoted" \realm`, `Basic realm="a \"quoted\" \\realm"`},
		{"line\r\nX-Injected: 1", `Basic realm="line  X-Injected: 1"`},
	}
	for _, tt := range tests {
		got := ProxyAuthenticate(tt.realm)
		if diff := cmp.Diff(Header{Name: "Proxy-Authenticate", Value: tt.want}, got); diff != "" {
			t.Errorf("ProxyAuthenticate(%q) mismatch (-want +got):\n%s", tt.realm, diff)
		}
	}
}

func TestStatusError(t *testing.T) {
	for _, tt := range []struct {
		status   int
		sentinel error
	}{
		{400, ErrBadRequest}, {405, ErrMethodNotAllowed}, {431, ErrHeaderTooLarge}, {505, ErrVersionNotSupported}, {403, nil},
	} {
		var err error = &StatusError{Status: tt.status, Reason: "why"}
		if got := errors.Unwrap(err); got != tt.sentinel {
			t.Errorf("status %d unwraps to %v, want %v", tt.status, got, tt.sentinel)
		}
		want := "httpconnect: " + strconv.Itoa(tt.status) + " " + StatusText(tt.status) + ": why"
		if err.Error() != want {
			t.Errorf("Error() = %q, want %q", err.Error(), want)
		}
	}
}

func TestAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	if a := testing.AllocsPerRun(100, func() { buf = AppendResponse(buf[:0], 200) }); a != 0 {
		t.Errorf("AppendResponse(200): %v allocations, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		buf = AppendResponse(buf[:0], 407, Header{"Proxy-Authenticate", `Basic realm="x"`})
	}); a != 0 {
		t.Errorf("AppendResponse(407, header): %v allocations, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		buf = AppendRequest(buf[:0], "example.com:443", "alice", "p:ss", true)
	}); a != 0 {
		t.Errorf("AppendRequest: %v allocations, want 0", a)
	}

	for _, tt := range []struct {
		name string
		in   string
		max  float64
	}{
		// Request, Target, User-Agent.
		{"curl", curlRequest, 3},
		// Request, Target, one string for user and password.
		{"auth", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: " + basic("alice:p:ss") + "\r\n\r\n", 3},
	} {
		r := strings.NewReader(tt.in)
		br := bufio.NewReaderSize(r, 4096)
		a := testing.AllocsPerRun(100, func() {
			r.Reset(tt.in)
			br.Reset(r)
			if _, err := ReadRequest(br, 0); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("ReadRequest %s: %v allocations", tt.name, a)
		if a > tt.max {
			t.Errorf("ReadRequest %s: %v allocations, want at most %v", tt.name, a, tt.max)
		}
	}
}

func TestLongLineGrowthBounded(t *testing.T) {
	// A single header line just under the cap, read through a tiny buffer:
	// the collecting buffer never exceeds the cap.
	const max = 10000
	head := "CONNECT h:1 HTTP/1.1\r\n"
	line := "X: " + strings.Repeat("b", max-len(head)-len("X: \r\n\r\n")) + "\r\n"
	in := head + line + "\r\n"
	if len(in) != max {
		t.Fatalf("test input is %d bytes, want %d", len(in), max)
	}
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	lr := lineReader{br: br, remaining: max}
	if _, err := lr.next(); err != nil {
		t.Fatal(err)
	}
	got, err := lr.next()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != strings.TrimSuffix(line, "\r\n") {
		t.Errorf("long line mismatch: got %d bytes", len(got))
	}
	if cap(lr.long) > max {
		t.Errorf("collecting buffer grew to %d bytes, cap is %d", cap(lr.long), max)
	}
	if _, err := ReadRequest(bufio.NewReaderSize(strings.NewReader(in), 16), max); err != nil {
		t.Errorf("ReadRequest at the cap: %v", err)
	}
}
