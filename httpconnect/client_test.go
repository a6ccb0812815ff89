package httpconnect

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppendRequest(t *testing.T) {
	tests := []struct {
		name     string
		target   string
		user, pw string
		useAuth  bool
		headers  []Header
		want     string
	}{
		{
			name:   "plain",
			target: "example.com:443",
			want:   "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		},
		{
			name:   "auth with colon in password",
			target: "[2001:db8::1]:443", user: "alice", pw: "p:ss", useAuth: true,
			headers: []Header{{"User-Agent", "virgil"}},
			want: "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\nProxy-Authorization: Basic " +
				base64.StdEncoding.EncodeToString([]byte("alice:p:ss")) + "\r\nUser-Agent: virgil\r\n\r\n",
		},
		{
			name:   "empty credentials still sent when asked",
			target: "h:1", useAuth: true,
			want: "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nProxy-Authorization: Basic Og==\r\n\r\n",
		},
		{
			name:   "credentials ignored without useAuth",
			target: "h:1", user: "alice", pw: "pw",
			want: "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n",
		},
		{
			name:   "injection in target is percent-encoded",
			target: "evil\r\nX-Injected: 1:443",
			want:   "CONNECT evil%0D%0AX-Injected:%201:443 HTTP/1.1\r\nHost: evil%0D%0AX-Injected:%201:443\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendRequest([]byte("x"), tt.target, tt.user, tt.pw, tt.useAuth, tt.headers...)
			if diff := cmp.Diff("x"+tt.want, string(got)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestRoundTrip(t *testing.T) {
	tests := []struct {
		target, user, pw string
		useAuth          bool
		headers          []Header
	}{
		{target: "example.com:443"},
		{target: "[::1]:443", user: "alice", pw: "p:ss", useAuth: true},
		{target: "192.0.2.1:8080", user: "", pw: "", useAuth: true, headers: []Header{{"User-Agent", "virgil/1"}}},
		{target: "h:1", user: "u", pw: strings.Repeat("long", 300), useAuth: true},
	}
	for _, tt := range tests {
		enc := AppendRequest(nil, tt.target, tt.user, tt.pw, tt.useAuth, tt.headers...)
		host, port, err := ParseTarget(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		want := &Request{Method: "CONNECT", Target: tt.target, Host: host, Port: port, Proto: "HTTP/1.1"}
		if tt.useAuth {
			want.Username, want.Password, want.HasCredentials = tt.user, tt.pw, true
		}
		for _, h := range tt.headers {
			if h.Name == "User-Agent" {
				want.UserAgent = h.Value
			}
		}
		for rname, br := range readers(string(enc) + "tunnel") {
			got, err := ReadRequest(br, 0)
			if err != nil {
				t.Fatalf("%s: ReadRequest(%q): %v", rname, enc, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: round trip mismatch (-want +got):\n%s", rname, diff)
			}
			if r := rest(t, br); r != "tunnel" {
				t.Errorf("%s: left %q, want %q", rname, r, "tunnel")
			}
		}
	}
}

// An injected target written by AppendRequest is refused by ReadRequest and
// never yields an extra header.
func TestInjectedTargetRefused(t *testing.T) {
	enc := AppendRequest(nil, "evil\r\nProxy-Authorization: Basic YTpi\r\n:443", "", "", false)
	if n := strings.Count(string(enc), "\r\n"); n != 3 {
		t.Fatalf("request has %d lines, want 3: %q", n, enc)
	}
	_, err := ReadRequest(bufio.NewReader(strings.NewReader(string(enc))), 0)
	if !errors.Is(err, ErrBadRequest) {
		t.Errorf("err = %v, want 400", err)
	}
}

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		want    *Response
		wantErr error
		after   string
	}{
		{
			name:  "established with tunnel bytes",
			in:    "HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-x\r\n",
			want:  &Response{Proto: "HTTP/1.1", Status: 200, Reason: "Connection established"},
			after: "SSH-2.0-x\r\n",
		},
		{
			name: "1.0 with headers",
			in:   "HTTP/1.0 200 OK\r\nProxy-agent: Apache\r\nX-Empty:\r\n\r\n",
			want: &Response{Proto: "HTTP/1.0", Status: 200, Reason: "OK", Header: []Header{{"Proxy-agent", "Apache"}, {"X-Empty", ""}}},
		},
		{
			name: "407 with body left unread",
			in:   "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 5\r\n\r\nhello",
			want: &Response{Proto: "HTTP/1.1", Status: 407, Reason: "Proxy Authentication Required",
				Header: []Header{{"Proxy-Authenticate", `Basic realm="x"`}, {"Content-Length", "5"}}},
			after: "hello",
		},
		{
			name: "no reason, no space",
			in:   "HTTP/1.1 200\r\n\r\n",
			want: &Response{Proto: "HTTP/1.1", Status: 200},
		},
		{
			name: "empty reason",
			in:   "HTTP/1.1 200 \n\n",
			want: &Response{Proto: "HTTP/1.1", Status: 200},
		},
		{
			name: "other version passed through",
			in:   "HTTP/2.0 200 OK\r\n\r\n",
			want: &Response{Proto: "HTTP/2.0", Status: 200, Reason: "OK"},
		},
		{
			name: "obs-fold joined",
			in:   "HTTP/1.1 502 Bad Gateway\r\nX-Why: upstream\r\n  refused\r\n\tthe connection\r\nX-Other:\r\n folded\r\n\r\n",
			want: &Response{Proto: "HTTP/1.1", Status: 502, Reason: "Bad Gateway",
				Header: []Header{{"X-Why", "upstream refused the connection"}, {"X-Other", "folded"}}},
		},
		{
			name: "long header through the collector",
			in:   "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("z", 3000) + "\r\n\r\n",
			want: &Response{Proto: "HTTP/1.1", Status: 200, Reason: "OK", Header: []Header{{"X-Long", strings.Repeat("z", 3000)}}},
		},
		{name: "ssh banner", in: "SSH-2.0-OpenSSH_9.2\r\n", wantErr: ErrMalformedResponse},
		{name: "socks5", in: "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00\n", wantErr: ErrMalformedResponse},
		{name: "two-digit status", in: "HTTP/1.1 20 OK\r\n\r\n", wantErr: ErrMalformedResponse},
		{name: "status 0xx", in: "HTTP/1.1 099 X\r\n\r\n", wantErr: ErrMalformedResponse},
		{name: "no space before reason", in: "HTTP/1.1 200OK\r\n\r\n", wantErr: ErrMalformedResponse},
		{name: "lower-case version", in: "http/1.1 200 OK\r\n\r\n", wantErr: ErrMalformedResponse},
		{name: "control char in reason", in: "HTTP/1.1 200 O\x01K\r\n\r\n", wantErr: ErrMalformedResponse},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nnope\r\n\r\n", wantErr: ErrMalformedResponse},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nX : y\r\n\r\n", wantErr: ErrMalformedResponse},
		{name: "bare CR in header", in: "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", wantErr: ErrMalformedResponse},
		{name: "continuation first", in: "HTTP/1.1 200 OK\r\n x\r\n\r\n", wantErr: ErrMalformedResponse},
		{name: "too large", in: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 100) + "\r\n\r\n", max: 64, wantErr: ErrHeaderTooLarge},
		{name: "status line too large", in: "HTTP/1.1 200 " + strings.Repeat("a", 100) + "\r\n\r\n", max: 64, wantErr: ErrHeaderTooLarge},
		{name: "empty", in: "", wantErr: io.EOF},
		{name: "cut in status line", in: "HTTP/1.1 2", wantErr: io.ErrUnexpectedEOF},
		{name: "cut after status line", in: "HTTP/1.1 200 OK\r\n", wantErr: io.ErrUnexpectedEOF},
		{name: "cut in header", in: "HTTP/1.1 200 OK\r\nX: y", wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		for rname, br := range readers(tt.in) {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, err := ReadResponse(br, tt.max)
				if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("mismatch (-want +got):\n%s", diff)
				}
				if err == nil {
					if r := rest(t, br); r != tt.after {
						t.Errorf("left %q, want %q", r, tt.after)
					}
				}
			})
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		status  int
		headers []Header
	}{
		{200, nil},
		{200, []Header{{"Proxy-Agent", "virgil"}}},
		{407, []Header{ProxyAuthenticate(`the "realm"`)}},
		{403, nil},
		{504, []Header{{"X-A", "1"}, {"X-B", "two words"}}},
	} {
		enc := AppendResponse(nil, tt.status, tt.headers...)
		for rname, br := range readers(string(enc) + "after") {
			got, err := ReadResponse(br, 0)
			if err != nil {
				t.Fatalf("%s: ReadResponse(%q): %v", rname, enc, err)
			}
			want := &Response{Proto: "HTTP/1.1", Status: tt.status, Reason: StatusText(tt.status), Header: tt.headers}
			if tt.status != 200 {
				want.Header = append(append([]Header(nil), tt.headers...), Header{"Connection", "close"}, Header{"Content-Length", "0"})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", rname, diff)
			}
			if r := rest(t, br); r != "after" {
				t.Errorf("%s: left %q, want %q", rname, r, "after")
			}
		}
	}
}

func TestResponseGet(t *testing.T) {
	r := &Response{Header: []Header{{"Proxy-Authenticate", "Basic realm=\"a\""}, {"proxy-authenticate", "second"}}}
	if got := r.Get("PROXY-AUTHENTICATE"); got != `Basic realm="a"` {
		t.Errorf("Get = %q, want the first value", got)
	}
	if got := r.Get("Missing"); got != "" {
		t.Errorf("Get(Missing) = %q, want empty", got)
	}
}

func TestTruncatedResponse(t *testing.T) {
	full := "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n folded\r\n\r\n"
	for i := 0; i < len(full); i++ {
		for rname, br := range readers(full[:i]) {
			resp, err := ReadResponse(br, 0)
			if err == nil || resp != nil {
				t.Fatalf("%s: ReadResponse(%q) = %+v, %v; want an error", rname, full[:i], resp, err)
			}
		}
	}
}

func TestResponseFlood(t *testing.T) {
	cr := &countingReader{r: io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\n"), &endless{pattern: "X: y\r\n"})}
	_, err := ReadResponse(bufio.NewReader(cr), 1024)
	if !errors.Is(err, ErrHeaderTooLarge) {
		t.Fatalf("err = %v, want ErrHeaderTooLarge", err)
	}
	if cr.n > 1024+4096 {
		t.Errorf("read %d bytes for a 1024-byte cap", cr.n)
	}
}

// TestFoldFlood joins thousands of continuation lines (in place, so in
// linear time) into one value.
func TestFoldFlood(t *testing.T) {
	const n = 20000
	in := "HTTP/1.1 200 OK\r\nX: a\r\n" + strings.Repeat(" b\r\n", n) + "\r\n"
	resp, err := ReadResponse(bufio.NewReader(strings.NewReader(in)), len(in))
	if err != nil {
		t.Fatal(err)
	}
	want := "a" + strings.Repeat(" b", n)
	if len(resp.Header) != 1 {
		t.Fatalf("got %d headers, want 1", len(resp.Header))
	}
	if got := resp.Header[0].Value; got != want {
		t.Errorf("value is %d bytes, want %d", len(got), len(want))
	}
}
