package socks5

import (
	"io"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppendGreeting(t *testing.T) {
	many := make([]Method, 256)
	tests := []struct {
		name    string
		methods []Method
		want    string
		wantErr []error
	}{
		{name: "none", methods: []Method{MethodNoAuth}, want: "\x05\x01\x00"},
		{name: "none-username", methods: []Method{MethodNoAuth, MethodUsernamePassword}, want: "\x05\x02\x00\x02"},
		{name: "order-kept", methods: []Method{MethodUsernamePassword, MethodNoAuth}, want: "\x05\x02\x02\x00"},
		{name: "255", methods: many[:255], want: "\x05\xff" + string(make([]byte, 255))},
		{name: "empty", methods: nil, wantErr: []error{ErrNoMethods}},
		{name: "256", methods: many, wantErr: []error{ErrTooManyMethods}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendGreeting([]byte("pre"), tt.methods...)
			if !checkAppend(t, got, err, tt.want, tt.wantErr) {
				return
			}
		})
	}
}

func TestReadMethodSelection(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Method
		wantErr []error
	}{
		{name: "none", in: "\x05\x00", want: MethodNoAuth},
		{name: "username", in: "\x05\x02", want: MethodUsernamePassword},
		{name: "no-acceptable", in: "\x05\xff", want: MethodNoAcceptable},
		{name: "private", in: "\x05\x80", want: 0x80},
		{name: "version-4", in: "\x04\x00", wantErr: []error{ErrVersion}},
		{name: "socks4-reply", in: "\x00\x5a", wantErr: []error{ErrVersion}},
		{name: "closed", in: "", wantErr: []error{ErrShortReply, io.EOF}},
		{name: "truncated", in: "\x05", wantErr: []error{ErrShortReply, io.ErrUnexpectedEOF}},
	}
	for _, tt := range tests {
		for _, rk := range readerKinds {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				trail := trailer
				if tt.wantErr != nil {
					trail = "" // the truncated cases must end the input
				}
				br := rk.make([]byte(tt.in + trail))
				got, err := ReadMethodSelection(br)
				checkErrs(t, err, tt.wantErr)
				if err != nil {
					return
				}
				if got != tt.want {
					t.Errorf("got %v, want %v", got, tt.want)
				}
				checkRest(t, br, trailer)
			})
		}
	}
}

func TestAppendUsernamePasswordRequest(t *testing.T) {
	tests := []struct {
		name, user, password string
		want                 string
		wantErr              []error
	}{
		{name: "rfc1929", user: "alice", password: "secret", want: "\x01\x05alice\x06secret"},
		{name: "max", user: name255, password: name255, want: "\x01\xff" + name255 + "\xff" + name255},
		{name: "empty-user", user: "", password: "p", wantErr: []error{ErrBadUsernamePassword}},
		{name: "empty-password", user: "u", password: "", wantErr: []error{ErrBadUsernamePassword}},
		{name: "long-user", user: name255 + "x", password: "p", wantErr: []error{ErrBadUsernamePassword}},
		{name: "long-password", user: "u", password: name255 + "x", wantErr: []error{ErrBadUsernamePassword}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendUsernamePasswordRequest([]byte("pre"), tt.user, tt.password)
			if !checkAppend(t, got, err, tt.want, tt.wantErr) {
				return
			}
		})
	}
}

func TestReadUsernamePasswordReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    bool
		wantErr []error
	}{
		{name: "success", in: "\x01\x00", want: true},
		{name: "failure", in: "\x01\x01", want: false},
		{name: "failure-other", in: "\x01\xff", want: false},
		{name: "version-5", in: "\x05\x00", wantErr: []error{ErrVersion}},
		{name: "closed", in: "", wantErr: []error{ErrShortReply, io.EOF}},
		{name: "truncated", in: "\x01", wantErr: []error{ErrShortReply, io.ErrUnexpectedEOF}},
	}
	for _, tt := range tests {
		for _, rk := range readerKinds {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				trail := trailer
				if tt.wantErr != nil {
					trail = ""
				}
				br := rk.make([]byte(tt.in + trail))
				got, err := ReadUsernamePasswordReply(br)
				checkErrs(t, err, tt.wantErr)
				if err != nil {
					return
				}
				if got != tt.want {
					t.Errorf("got %v, want %v", got, tt.want)
				}
				checkRest(t, br, trailer)
			})
		}
	}
}

func TestAppendRequest(t *testing.T) {
	tests := []struct {
		name    string
		r       Request
		want    string
		wantErr []error
	}{
		{name: "connect-ipv4", r: Request{CommandConnect, mustAddr("192.0.2.1:80")},
			want: "\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x50"},
		{name: "connect-domain", r: Request{CommandConnect, mustAddr("example.com:443")},
			want: "\x05\x01\x00\x03\x0bexample.com\x01\xbb"},
		{name: "bind-ipv6", r: Request{CommandBind, mustAddr("[2001:db8::1]:0")},
			want: "\x05\x02\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00"},
		{name: "udp-zeros", r: Request{CommandUDPAssociate, mustAddr("0.0.0.0:0")},
			want: "\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"},
		{name: "extension-command", r: Request{0xf0, mustAddr("example.com:0")},
			want: "\x05\xf0\x00\x03\x0bexample.com\x00\x00"},
		{name: "no-address", r: Request{CommandConnect, Addr{Port: 80}}, wantErr: []error{ErrBadAddress}},
		{name: "long-name", r: Request{CommandConnect, Addr{Name: name255 + "x"}}, wantErr: []error{ErrBadAddress}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendRequest([]byte("pre"), tt.r)
			if !checkAppend(t, got, err, tt.want, tt.wantErr) {
				return
			}
		})
	}
}

func TestReadReply(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		name    string
		in      string
		want    Reply
		wantErr []error
	}{
		{name: "dante-success", in: "\x05\x00\x00\x01\xc0\x00\x02\x01\x9c\x40",
			want: Reply{ReplySucceeded, Addr{IP: ip("192.0.2.1"), Port: 40000}}},
		{name: "ipv6", in: "\x05\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x04\x38",
			want: Reply{ReplySucceeded, Addr{IP: ip("2001:db8::2"), Port: 1080}}},
		{name: "dante-unresolvable-echoes-name", in: "\x05\x04\x00\x03\x0fnowhere.invalid\x00\x50",
			want: Reply{ReplyHostUnreachable, Addr{Name: "nowhere.invalid", Port: 80}}},
		{name: "refused", in: "\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00",
			want: Reply{ReplyConnectionRefused, Addr{IP: ip("0.0.0.0")}}},
		{name: "rsv-ignored", in: "\x05\x00\x01\x01\x7f\x00\x00\x01\x00\x01",
			want: Reply{ReplySucceeded, Addr{IP: ip("127.0.0.1"), Port: 1}}},
		{name: "unassigned-code", in: "\x05\x42\x00\x01\x0a\x00\x00\x01\x00\x02",
			want: Reply{ReplyCode(0x42), Addr{IP: ip("10.0.0.1"), Port: 2}}},
		{name: "version-4", in: "\x04\x00\x00\x01\x00\x00\x00\x00\x00\x00", wantErr: []error{ErrVersion}},
		{name: "atyp-2", in: "\x05\x01\x00\x02", want: Reply{Code: ReplyGeneralFailure}, wantErr: []error{ErrAddressType}},
		{name: "domain-len-0", in: "\x05\x00\x00\x03\x00\x00\x00", want: Reply{}, wantErr: []error{ErrEmptyDomain}},
		{name: "closed", in: "", wantErr: []error{ErrShortReply, io.EOF}},
		{name: "code-then-close", in: "\x05\x07", want: Reply{Code: ReplyCommandNotSupported},
			wantErr: []error{ErrShortReply, io.ErrUnexpectedEOF}},
		{name: "cut-in-address", in: "\x05\x02\x00\x01\x7f\x00", want: Reply{Code: ReplyNotAllowed},
			wantErr: []error{ErrShortReply, io.ErrUnexpectedEOF}},
	}
	for _, tt := range tests {
		for _, rk := range readerKinds {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				trail := trailer
				if tt.wantErr != nil {
					trail = ""
				}
				br := rk.make([]byte(tt.in + trail))
				got, err := ReadReply(br)
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
