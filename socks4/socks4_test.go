package socks4

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// addrCmp compares netip.Addr values by value.
var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// readers returns the ways the tests feed input to the decoders: a default
// bufio buffer, the smallest one (16 bytes), and one byte per Read.
func readers(data []byte) map[string]*bufio.Reader {
	return map[string]*bufio.Reader{
		"default": bufio.NewReader(bytes.NewReader(data)),
		"tiny":    bufio.NewReaderSize(bytes.NewReader(data), 16),
		"onebyte": bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(data)), 16),
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

func ip4(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestReadRequest(t *testing.T) {
	long := strings.Repeat("u", MaxUserIDLen)
	longHost := strings.Repeat("h", MaxHostLen)
	tests := []struct {
		name    string
		in      []byte
		want    Request
		wantErr error
		after   string // what must stay in the reader (only checked on success)
	}{
		{
			name: "connect empty user",
			in:   []byte{4, 1, 0x01, 0xbb, 192, 0, 2, 1, 0},
			want: Request{Command: CommandConnect, Port: 443, IP: ip4("192.0.2.1")},
		},
		{
			name:  "connect with user and trailing data",
			in:    append([]byte{4, 1, 0, 80, 10, 1, 2, 3, 'b', 'o', 'b', 0}, "GET /"...),
			want:  Request{Command: CommandConnect, Port: 80, IP: ip4("10.1.2.3"), UserID: "bob"},
			after: "GET /",
		},
		{
			name: "bind zero ip",
			in:   []byte{4, 2, 0x5b, 0xa2, 0, 0, 0, 0, 0},
			want: Request{Command: CommandBind, Port: 23458, IP: ip4("0.0.0.0")},
		},
		{
			name: "socks4a",
			in:   append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 'u', 0}, "example.com\x00"...),
			want: Request{Command: CommandConnect, Port: 80, IP: ip4("0.0.0.1"), UserID: "u", Host: "example.com"},
		},
		{
			name:  "socks4a marker 255 empty user, trailing",
			in:    append([]byte{4, 1, 0, 80, 0, 0, 0, 255, 0}, "h\x00xyz"...),
			want:  Request{Command: CommandConnect, Port: 80, IP: ip4("0.0.0.255"), Host: "h"},
			after: "xyz",
		},
		{
			name: "user id at the cap",
			in:   append(append([]byte{4, 1, 0, 1, 1, 2, 3, 4}, long...), 0),
			want: Request{Command: CommandConnect, Port: 1, IP: ip4("1.2.3.4"), UserID: long},
		},
		{
			name: "host at the cap",
			in:   append(append([]byte{4, 1, 0, 1, 0, 0, 0, 9, 0}, longHost...), 0),
			want: Request{Command: CommandConnect, Port: 1, IP: ip4("0.0.0.9"), Host: longHost},
		},
		{
			name:    "user id over the cap",
			in:      append(append([]byte{4, 1, 0, 1, 1, 2, 3, 4}, long...), 'x', 0),
			want:    Request{Command: CommandConnect, Port: 1, IP: ip4("1.2.3.4")},
			wantErr: ErrUserIDTooLong,
		},
		{
			name:    "user id unterminated and huge",
			in:      append([]byte{4, 1, 0, 1, 1, 2, 3, 4}, strings.Repeat("x", 1<<16)...),
			want:    Request{Command: CommandConnect, Port: 1, IP: ip4("1.2.3.4")},
			wantErr: ErrUserIDTooLong,
		},
		{
			name:    "host over the cap",
			in:      append(append([]byte{4, 1, 0, 1, 0, 0, 0, 9, 'u', 0}, longHost...), 'x', 0),
			want:    Request{Command: CommandConnect, Port: 1, IP: ip4("0.0.0.9"), UserID: "u"},
			wantErr: ErrHostTooLong,
		},
		{
			name:    "socks4a empty host",
			in:      []byte{4, 1, 0, 1, 0, 0, 0, 9, 0, 0},
			want:    Request{Command: CommandConnect, Port: 1, IP: ip4("0.0.0.9")},
			wantErr: ErrEmptyHost,
		},
		{
			name:    "unknown command still decoded",
			in:      append([]byte{4, 3, 0, 53, 0, 0, 0, 1, 'u', 0}, "dns\x00after"...),
			want:    Request{Command: 3, Port: 53, IP: ip4("0.0.0.1"), UserID: "u", Host: "dns"},
			wantErr: ErrCommandNotSupported,
			after:   "after",
		},
		{
			name:    "unknown command with too long user id",
			in:      append([]byte{4, 9, 0, 53, 1, 1, 1, 1}, strings.Repeat("x", 300)...),
			want:    Request{Command: 9, Port: 53, IP: ip4("1.1.1.1")},
			wantErr: ErrUserIDTooLong,
		},
		{
			name:    "socks5 greeting",
			in:      []byte{5, 1, 0},
			wantErr: ErrVersion,
			after:   "\x05\x01\x00",
		},
		{
			name:    "http",
			in:      []byte("CONNECT example.com:443 HTTP/1.1\r\n"),
			wantErr: ErrVersion,
			after:   "CONNECT example.com:443 HTTP/1.1\r\n",
		},
		{name: "empty", in: nil, wantErr: io.EOF},
		{name: "header cut", in: []byte{4, 1, 0, 80}, wantErr: io.ErrUnexpectedEOF},
		{
			name:    "user id cut",
			in:      []byte{4, 1, 0, 80, 1, 2, 3, 4, 'a', 'b'},
			want:    Request{Command: CommandConnect, Port: 80, IP: ip4("1.2.3.4")},
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name:    "host cut",
			in:      []byte{4, 1, 0, 80, 0, 0, 0, 1, 0, 'a', 'b'},
			want:    Request{Command: CommandConnect, Port: 80, IP: ip4("0.0.0.1")},
			wantErr: io.ErrUnexpectedEOF,
		},
	}
	for _, tt := range tests {
		for rname, br := range readers(tt.in) {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, err := ReadRequest(br)
				if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.want, got, addrCmp); diff != "" {
					t.Errorf("request mismatch (-want +got):\n%s", diff)
				}
				if tt.wantErr == nil || errors.Is(tt.wantErr, ErrCommandNotSupported) || errors.Is(tt.wantErr, ErrVersion) {
					if r := rest(t, br); r != tt.after {
						t.Errorf("left in reader %q, want %q", r, tt.after)
					}
				}
			})
		}
	}
}

// TestReadRequestBoundedRead checks that an unterminated user ID makes the
// reader look at no more than the cap (plus the NUL it hoped for).
func TestReadRequestBoundedRead(t *testing.T) {
	in := append([]byte{4, 1, 0, 1, 1, 2, 3, 4}, bytes.Repeat([]byte{'x'}, 1<<20)...)
	br := bufio.NewReaderSize(bytes.NewReader(in), 16)
	_, err := ReadRequest(br)
	if !errors.Is(err, ErrUserIDTooLong) {
		t.Fatalf("err = %v, want ErrUserIDTooLong", err)
	}
	left, _ := io.ReadAll(br)
	consumed := len(in) - len(left)
	if max := headerLen + MaxUserIDLen + 1; consumed > max {
		t.Errorf("consumed %d bytes, want at most %d", consumed, max)
	}
}

func TestAppendRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      Request
		want    []byte
		wantErr error
	}{
		{
			name: "socks4",
			in:   Request{Command: CommandConnect, Port: 443, IP: ip4("192.0.2.1"), UserID: "bob"},
			want: []byte{4, 1, 1, 0xbb, 192, 0, 2, 1, 'b', 'o', 'b', 0},
		},
		{
			name: "mapped ipv6",
			in:   Request{Command: CommandBind, Port: 1, IP: netip.MustParseAddr("::ffff:10.0.0.1")},
			want: []byte{4, 2, 0, 1, 10, 0, 0, 1, 0},
		},
		{
			name: "socks4a default marker",
			in:   Request{Command: CommandConnect, Port: 80, IP: ip4("203.0.113.9"), Host: "example.com"},
			want: append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, "example.com\x00"...),
		},
		{
			name: "socks4a keeps marker",
			in:   Request{Command: CommandConnect, Port: 80, IP: ip4("0.0.0.7"), UserID: "u", Host: "h"},
			want: []byte{4, 1, 0, 80, 0, 0, 0, 7, 'u', 0, 'h', 0},
		},
		{
			name: "socks4a zero addr",
			in:   Request{Command: CommandConnect, Port: 80, Host: "h"},
			want: []byte{4, 1, 0, 80, 0, 0, 0, 1, 0, 'h', 0},
		},
		{name: "ipv6", in: Request{Command: CommandConnect, IP: netip.MustParseAddr("::1")}, wantErr: ErrNotIPv4},
		{name: "zero addr", in: Request{Command: CommandConnect}, wantErr: ErrNotIPv4},
		{name: "marker without host", in: Request{Command: CommandConnect, IP: ip4("0.0.0.3")}, wantErr: ErrEmptyHost},
		{
			name:    "user id too long",
			in:      Request{Command: CommandConnect, IP: ip4("1.2.3.4"), UserID: strings.Repeat("u", 256)},
			wantErr: ErrUserIDTooLong,
		},
		{
			name:    "host too long",
			in:      Request{Command: CommandConnect, Host: strings.Repeat("h", 256)},
			wantErr: ErrHostTooLong,
		},
		{name: "nul in user", in: Request{IP: ip4("1.2.3.4"), UserID: "a\x00b"}, wantErr: ErrContainsNUL},
		{name: "nul in host", in: Request{Host: "a\x00b"}, wantErr: ErrContainsNUL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, err := AppendRequest(prefix, tt.in)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if string(got) != "prefix" {
					t.Errorf("on error got %q, want the prefix unchanged", got)
				}
				return
			}
			if diff := cmp.Diff(append([]byte("prefix"), tt.want...), got); diff != "" {
				t.Errorf("encoding mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestRoundTrip(t *testing.T) {
	reqs := []Request{
		{Command: CommandConnect, Port: 1, IP: ip4("1.2.3.4")},
		{Command: CommandBind, Port: 65535, IP: ip4("255.255.255.255"), UserID: "someone"},
		{Command: CommandConnect, Port: 443, IP: ip4("0.0.0.1"), UserID: strings.Repeat("u", MaxUserIDLen), Host: strings.Repeat("h", MaxHostLen)},
		{Command: CommandConnect, Port: 8080, IP: ip4("0.0.0.200"), Host: "xn--bcher-kva.example"},
		{Command: 0x7f, Port: 8080, IP: ip4("9.9.9.9"), UserID: "\xff\x01"},
	}
	for _, r := range reqs {
		enc, err := AppendRequest(nil, r)
		if err != nil {
			t.Fatalf("AppendRequest(%+v): %v", r, err)
		}
		for rname, br := range readers(append(enc, "tail"...)) {
			got, err := ReadRequest(br)
			if r.Command != CommandConnect && r.Command != CommandBind {
				if !errors.Is(err, ErrCommandNotSupported) {
					t.Fatalf("%s: err = %v, want ErrCommandNotSupported", rname, err)
				}
			} else if err != nil {
				t.Fatalf("%s: ReadRequest: %v", rname, err)
			}
			if diff := cmp.Diff(r, got, addrCmp); diff != "" {
				t.Errorf("%s: round trip mismatch (-want +got):\n%s", rname, diff)
			}
			if got.IsSOCKS4a() != (r.Host != "") {
				t.Errorf("%s: IsSOCKS4a = %v for %+v", rname, got.IsSOCKS4a(), got)
			}
			if tail := rest(t, br); tail != "tail" {
				t.Errorf("%s: left %q, want %q", rname, tail, "tail")
			}
		}
	}
}

func TestIsSOCKS4a(t *testing.T) {
	tests := []struct {
		r    Request
		want bool
	}{
		{Request{IP: ip4("0.0.0.1"), Host: "h"}, true},
		{Request{IP: ip4("0.0.0.1")}, true},
		{Request{Host: "h"}, true},
		{Request{IP: ip4("0.0.0.0")}, false},
		{Request{IP: ip4("0.0.1.1")}, false},
		{Request{IP: ip4("10.0.0.1")}, false},
		{Request{}, false},
	}
	for _, tt := range tests {
		if got := tt.r.IsSOCKS4a(); got != tt.want {
			t.Errorf("%+v.IsSOCKS4a() = %v, want %v", tt.r, got, tt.want)
		}
	}
}

func TestAppendReply(t *testing.T) {
	tests := []struct {
		name string
		code ReplyCode
		addr netip.AddrPort
		want []byte
	}{
		{"granted", ReplyGranted, netip.MustParseAddrPort("192.0.2.7:1080"), []byte{0, 90, 0x04, 0x38, 192, 0, 2, 7}},
		{"rejected zero", ReplyRejected, netip.AddrPort{}, []byte{0, 91, 0, 0, 0, 0, 0, 0}},
		{"mapped", ReplyNoIdentd, netip.MustParseAddrPort("[::ffff:10.9.8.7]:2"), []byte{0, 92, 0, 2, 10, 9, 8, 7}},
		{"ipv6 becomes zero", ReplyIdentMismatch, netip.MustParseAddrPort("[2001:db8::1]:443"), []byte{0, 93, 1, 0xbb, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendReply([]byte{0xee}, tt.code, tt.addr)
			if diff := cmp.Diff(append([]byte{0xee}, tt.want...), got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    Reply
		wantErr error
		after   string
	}{
		{"granted", append([]byte{0, 90, 0, 80, 1, 2, 3, 4}, "data"...), Reply{Code: ReplyGranted, Port: 80, IP: ip4("1.2.3.4")}, nil, "data"},
		{"version 4 accepted", []byte{4, 91, 0, 0, 0, 0, 0, 0}, Reply{Code: ReplyRejected, IP: ip4("0.0.0.0")}, nil, ""},
		{"unknown code passed through", []byte{0, 0x5f, 0, 1, 0, 0, 0, 0}, Reply{Code: 0x5f, Port: 1, IP: ip4("0.0.0.0")}, nil, ""},
		{"socks5 reply", []byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}, Reply{}, ErrVersion, "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"},
		{"http reply", []byte("HTTP/1.1 400 Bad Request\r\n"), Reply{}, ErrVersion, "HTTP/1.1 400 Bad Request\r\n"},
		{"empty", nil, Reply{}, io.EOF, ""},
		{"cut", []byte{0, 90, 0}, Reply{}, io.ErrUnexpectedEOF, ""},
	}
	for _, tt := range tests {
		for rname, br := range readers(tt.in) {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, err := ReadReply(br)
				if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.want, got, addrCmp); diff != "" {
					t.Errorf("mismatch (-want +got):\n%s", diff)
				}
				if tt.wantErr == nil || errors.Is(tt.wantErr, ErrVersion) {
					if r := rest(t, br); r != tt.after {
						t.Errorf("left %q, want %q", r, tt.after)
					}
				}
			})
		}
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for _, ap := range []netip.AddrPort{
		netip.MustParseAddrPort("0.0.0.0:0"),
		netip.MustParseAddrPort("127.0.0.1:1080"),
		netip.MustParseAddrPort("255.255.255.255:65535"),
	} {
		for _, code := range []ReplyCode{ReplyGranted, ReplyRejected, ReplyNoIdentd, ReplyIdentMismatch} {
			enc := AppendReply(nil, code, ap)
			got, err := ReadReply(bufio.NewReader(bytes.NewReader(enc)))
			if err != nil {
				t.Fatalf("ReadReply(%x): %v", enc, err)
			}
			want := Reply{Code: code, Port: ap.Port(), IP: ap.Addr()}
			if diff := cmp.Diff(want, got, addrCmp); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if got.AddrPort() != ap {
				t.Errorf("AddrPort() = %v, want %v", got.AddrPort(), ap)
			}
		}
	}
}

// TestTruncated feeds every prefix of valid messages to the decoders: no
// panic, and an error for every proper prefix.
func TestTruncated(t *testing.T) {
	msgs := [][]byte{
		{4, 1, 0, 80, 1, 2, 3, 4, 'b', 'o', 'b', 0},
		append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 'u', 0}, "example.com\x00"...),
	}
	for _, m := range msgs {
		for i := 0; i < len(m); i++ {
			for rname, br := range readers(m[:i]) {
				if _, err := ReadRequest(br); err == nil {
					t.Errorf("%s: ReadRequest(%q) succeeded on a truncated request", rname, m[:i])
				} else if i > 0 && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("%s: ReadRequest(%q) = %v, want io.ErrUnexpectedEOF", rname, m[:i], err)
				}
			}
		}
	}
	reply := []byte{0, 90, 0, 80, 1, 2, 3, 4}
	for i := 0; i < len(reply); i++ {
		if _, err := ReadReply(bufio.NewReader(bytes.NewReader(reply[:i]))); err == nil {
			t.Errorf("ReadReply(%x) succeeded on a truncated reply", reply[:i])
		}
	}
}

func TestErrorsPassThrough(t *testing.T) {
	boom := errors.New("boom")
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader([]byte{4, 1, 0, 80, 1, 2, 3, 4, 'a'}), iotest.ErrReader(boom)), 16)
	if _, err := ReadRequest(br); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error", err)
	}
	br = bufio.NewReaderSize(iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader([]byte{0, 90, 0, 80, 1, 2, 3, 4}))), 16)
	if _, err := ReadReply(br); !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("err = %v, want iotest.ErrTimeout", err)
	}
}

func TestStrings(t *testing.T) {
	got := []string{CommandConnect.String(), CommandBind.String(), Command(9).String(),
		ReplyGranted.String(), ReplyRejected.String(), ReplyNoIdentd.String(), ReplyIdentMismatch.String(), ReplyCode(1).String()}
	want := []string{"CONNECT", "BIND", "Command(9)",
		"request granted", "request rejected or failed", "request rejected: cannot reach the client's identd",
		"request rejected: identd user differs from user ID", "ReplyCode(1)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestReadRequestAllocs(t *testing.T) {
	in := []byte{4, 1, 0x01, 0xbb, 192, 0, 2, 1, 0}
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 64)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(in)
		br.Reset(r)
		if _, err := ReadRequest(br); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ReadRequest with empty user ID: %v allocations, want 0", allocs)
	}

	in4a := append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 'b', 'o', 'b', 0}, "example.com\x00"...)
	allocs = testing.AllocsPerRun(100, func() {
		r.Reset(in4a)
		br.Reset(r)
		if _, err := ReadRequest(br); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 2 {
		t.Errorf("ReadRequest SOCKS4a with user ID: %v allocations, want 2 (the two strings)", allocs)
	}
}

func TestAppendAllocs(t *testing.T) {
	buf := make([]byte, 0, 600)
	req := Request{Command: CommandConnect, Port: 80, IP: ip4("0.0.0.1"), UserID: "bob", Host: "example.com"}
	if a := testing.AllocsPerRun(100, func() {
		if _, err := AppendRequest(buf[:0], req); err != nil {
			t.Fatal(err)
		}
		_ = AppendReply(buf[:0], ReplyGranted, netip.MustParseAddrPort("1.2.3.4:5"))
	}); a != 0 {
		t.Errorf("Append*: %v allocations, want 0", a)
	}
}
