package socks5

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadGreeting(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    MethodSet
		wantErr []error
	}{
		{name: "rfc-no-auth", in: "\x05\x01\x00", want: MethodSetOf(MethodNoAuth)},
		{name: "curl-style", in: "\x05\x02\x00\x02", want: MethodSetOf(MethodNoAuth, MethodUsernamePassword)},
		{name: "three", in: "\x05\x03\x00\x01\x02", want: MethodSetOf(MethodNoAuth, MethodGSSAPI, MethodUsernamePassword)},
		{name: "dups", in: "\x05\x03\x02\x02\x02", want: MethodSetOf(MethodUsernamePassword)},
		{name: "private-and-ff", in: "\x05\x02\x80\xff", want: MethodSetOf(0x80, MethodNoAcceptable)},
		{name: "wrong-version-4", in: "\x04\x01\x00", wantErr: []error{ErrVersion}},
		{name: "wrong-version-0", in: "\x00", wantErr: []error{ErrVersion}},
		{name: "zero-methods", in: "\x05\x00", wantErr: []error{ErrNoMethods}},
	}
	// 255 methods, all of them but 0xff, through any buffer size.
	all := []byte{5, 255}
	var allSet MethodSet
	for m := range 255 {
		all = append(all, byte(m))
		allSet.Add(Method(m))
	}
	tests = append(tests, struct {
		name    string
		in      string
		want    MethodSet
		wantErr []error
	}{name: "255-methods", in: string(all), want: allSet})

	for _, tt := range tests {
		for _, rk := range readerKinds {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				br := rk.make([]byte(tt.in + trailer))
				got, err := ReadGreeting(br)
				checkErrs(t, err, tt.wantErr)
				if err != nil {
					return
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				checkRest(t, br, trailer)
			})
		}
	}
}

func TestAppendMethodSelection(t *testing.T) {
	tests := []struct {
		m    Method
		want string
	}{
		{MethodNoAuth, "\x05\x00"},
		{MethodUsernamePassword, "\x05\x02"},
		{MethodNoAcceptable, "\x05\xff"},
	}
	for _, tt := range tests {
		got := AppendMethodSelection([]byte("x"), tt.m)
		if diff := cmp.Diff("x"+tt.want, string(got)); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tt.m, diff)
		}
	}
}

func TestReadUsernamePasswordRequest(t *testing.T) {
	tests := []struct {
		name           string
		in             string
		user, password string
		wantErr        []error
	}{
		{name: "rfc1929", in: "\x01\x05alice\x06secret", user: "alice", password: "secret"},
		{name: "one-byte-each", in: "\x01\x01u\x01p", user: "u", password: "p"},
		{name: "binary", in: "\x01\x02\x00\xff\x03:\x00\n", user: "\x00\xff", password: ":\x00\n"},
		{name: "max", in: "\x01\xff" + name255 + "\xff" + name255, user: name255, password: name255},
		{name: "version-5", in: "\x05\x01u\x01p", wantErr: []error{ErrBadUsernamePassword, ErrVersion}},
		{name: "version-0", in: "\x00", wantErr: []error{ErrBadUsernamePassword, ErrVersion}},
		{name: "ulen-0", in: "\x01\x00\x01p", wantErr: []error{ErrBadUsernamePassword}},
		{name: "plen-0", in: "\x01\x01u\x00", wantErr: []error{ErrBadUsernamePassword}},
	}
	for _, tt := range tests {
		for _, rk := range readerKinds {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				br := rk.make([]byte(tt.in + trailer))
				user, password, err := ReadUsernamePasswordRequest(br)
				checkErrs(t, err, tt.wantErr)
				if err != nil {
					return
				}
				if user != tt.user || password != tt.password {
					t.Errorf("got %q/%q, want %q/%q", user, password, tt.user, tt.password)
				}
				checkRest(t, br, trailer)
			})
		}
	}
}

func TestUsernamePasswordErrorHidesPassword(t *testing.T) {
	const secret = "hunter2-very-secret"
	long := strings.Repeat(secret, 20) // 380 bytes: too long
	for _, tc := range []struct{ user, password string }{{"", secret}, {"user", long}, {long, secret}} {
		_, err := AppendUsernamePasswordRequest(nil, tc.user, tc.password)
		checkErrs(t, err, []error{ErrBadUsernamePassword})
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q reveals the password", err)
		}
	}
}

func TestAppendUsernamePasswordReply(t *testing.T) {
	if got := AppendUsernamePasswordReply(nil, true); string(got) != "\x01\x00" {
		t.Errorf("success: got % x", got)
	}
	if got := AppendUsernamePasswordReply(nil, false); string(got) != "\x01\x01" {
		t.Errorf("failure: got % x", got)
	}
}

func TestReadRequest(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		name    string
		in      string
		want    Request
		wantErr []error
	}{
		{name: "connect-ipv4", in: "\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x50",
			want: Request{CommandConnect, Addr{IP: ip("192.0.2.1"), Port: 80}}},
		{name: "bind-ipv6",
			in:   "\x05\x02\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\xbb",
			want: Request{CommandBind, Addr{IP: ip("2001:db8::1"), Port: 443}}},
		{name: "udp-associate-zeros", in: "\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00",
			want: Request{CommandUDPAssociate, Addr{IP: ip("0.0.0.0"), Port: 0}}},
		{name: "connect-domain", in: "\x05\x01\x00\x03\x0bexample.com\x01\xbb",
			want: Request{CommandConnect, Addr{Name: "example.com", Port: 443}}},
		{name: "domain-255", in: "\x05\x01\x00\x03\xff" + name255 + "\xff\xff",
			want: Request{CommandConnect, Addr{Name: name255, Port: 65535}}},
		{name: "domain-binary-kept", in: "\x05\x01\x00\x03\x03a\x00b\x00\x01",
			want: Request{CommandConnect, Addr{Name: "a\x00b", Port: 1}}},
		{name: "domain-ip-literal-kept-as-name", in: "\x05\x01\x00\x03\x071.2.3.4\x00\x01",
			want: Request{CommandConnect, Addr{Name: "1.2.3.4", Port: 1}}},
		{name: "v4-mapped-kept",
			in:   "\x05\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xc0\x00\x02\x01\x00\x50",
			want: Request{CommandConnect, Addr{IP: ip("::ffff:192.0.2.1"), Port: 80}}},
		{name: "rsv-ignored", in: "\x05\x01\xff\x01\x7f\x00\x00\x01\x00\x16",
			want: Request{CommandConnect, Addr{IP: ip("127.0.0.1"), Port: 22}}},
		{name: "version-4", in: "\x04\x01\x00\x50\x7f\x00\x00\x01\x00", wantErr: []error{ErrVersion}},
		{name: "command-0", in: "\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x16",
			want: Request{Command: 0}, wantErr: []error{ErrCommandNotSupported}},
		{name: "command-9", in: "\x05\x09", want: Request{Command: 9}, wantErr: []error{ErrCommandNotSupported}},
		{name: "command-tor-resolve", in: "\x05\xf0\x00\x03\x0bexample.com\x00\x00",
			want: Request{Command: 0xf0}, wantErr: []error{ErrCommandNotSupported}},
		{name: "atyp-0", in: "\x05\x01\x00\x00\x7f\x00\x00\x01\x00\x16",
			want: Request{Command: CommandConnect}, wantErr: []error{ErrAddressType}},
		{name: "atyp-2", in: "\x05\x01\x00\x02", want: Request{Command: CommandConnect}, wantErr: []error{ErrAddressType}},
		{name: "atyp-5", in: "\x05\x03\x00\x05", want: Request{Command: CommandUDPAssociate}, wantErr: []error{ErrAddressType}},
		{name: "domain-len-0", in: "\x05\x01\x00\x03\x00\x00\x50",
			want: Request{Command: CommandConnect}, wantErr: []error{ErrEmptyDomain}},
	}
	for _, tt := range tests {
		for _, rk := range readerKinds {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				br := rk.make([]byte(tt.in + trailer))
				got, err := ReadRequest(br)
				checkErrs(t, err, tt.wantErr)
				if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				if err == nil {
					checkRest(t, br, trailer)
				}
			})
		}
	}
}

func TestAppendReply(t *testing.T) {
	tests := []struct {
		name  string
		code  ReplyCode
		bound Addr
		want  string
	}{
		{"succeeded-ipv4", ReplySucceeded, mustAddr("192.0.2.1:1080"), "\x05\x00\x00\x01\xc0\x00\x02\x01\x04\x38"},
		{"succeeded-ipv6", ReplySucceeded, mustAddr("[2001:db8::2]:1080"),
			"\x05\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x04\x38"},
		{"host-unreachable-domain", ReplyHostUnreachable, mustAddr("nowhere.invalid:80"),
			"\x05\x04\x00\x03\x0fnowhere.invalid\x00\x50"},
		{"zero-bound", ReplyGeneralFailure, Addr{}, "\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00"},
		{"command-not-supported", ReplyCommandNotSupported, Addr{}, "\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00"},
		{"port-only-bound", ReplySucceeded, Addr{Port: 1080}, "\x05\x00\x00\x01\x00\x00\x00\x00\x04\x38"},
		{"too-long-name", ReplyNotAllowed, Addr{Name: name255 + "x", Port: 1}, "\x05\x02\x00\x01\x00\x00\x00\x00\x00\x01"},
		{"unassigned-code", ReplyCode(0x42), mustAddr("10.0.0.1:2"), "\x05\x42\x00\x01\x0a\x00\x00\x01\x00\x02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendReply([]byte("pre"), tt.code, tt.bound)
			if diff := cmp.Diff("pre"+tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplyFor(t *testing.T) {
	timeout := &os.PathError{Op: "read", Path: "x", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		name   string
		err    error
		code   ReplyCode
		should bool
	}{
		{"nil", nil, ReplySucceeded, false},
		{"command", fmt.Errorf("%w: 0x09", ErrCommandNotSupported), ReplyCommandNotSupported, true},
		{"atyp", fmt.Errorf("%w: 0x02", ErrAddressType), ReplyAddressTypeNotSupported, true},
		{"empty-domain", ErrEmptyDomain, ReplyGeneralFailure, true},
		{"version", ErrVersion, ReplyGeneralFailure, false},
		{"eof", io.EOF, ReplyGeneralFailure, false},
		{"unexpected-eof", io.ErrUnexpectedEOF, ReplyGeneralFailure, false},
		{"timeout", timeout, ReplyGeneralFailure, false},
		{"other", errors.New("boom"), ReplyGeneralFailure, false},
	}
	for _, tt := range tests {
		code, should := ReplyFor(tt.err)
		if code != tt.code || should != tt.should {
			t.Errorf("%s: ReplyFor = %v, %v; want %v, %v", tt.name, code, should, tt.code, tt.should)
		}
	}
}

// TestReplyForReadRequest feeds ReplyFor the errors ReadRequest actually
// returns.
func TestReplyForReadRequest(t *testing.T) {
	tests := []struct {
		in     string
		code   ReplyCode
		should bool
	}{
		{"\x05\x09", ReplyCommandNotSupported, true},
		{"\x05\x01\x00\x07", ReplyAddressTypeNotSupported, true},
		{"\x05\x01\x00\x03\x00", ReplyGeneralFailure, true},
		{"\x04\x01", ReplyGeneralFailure, false},
		{"", ReplyGeneralFailure, false},
		{"\x05\x01\x00\x01\x01", ReplyGeneralFailure, false},
	}
	for _, tt := range tests {
		_, err := ReadRequest(readerKinds[0].make([]byte(tt.in)))
		code, should := ReplyFor(err)
		if code != tt.code || should != tt.should {
			t.Errorf("% x: err %v: ReplyFor = %v, %v; want %v, %v", tt.in, err, code, should, tt.code, tt.should)
		}
	}
}
