package socks5

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    Addr
		wantErr bool
	}{
		{in: "192.0.2.1:80", want: Addr{IP: netip.AddrFrom4([4]byte{192, 0, 2, 1}), Port: 80}},
		{in: "[2001:db8::1]:443", want: Addr{IP: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}), Port: 443}},
		{in: "[::ffff:192.0.2.1]:1", want: Addr{IP: netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: 1}), Port: 1}},
		{in: "example.com:65535", want: Addr{Name: "example.com", Port: 65535}},
		{in: "a:0", want: Addr{Name: "a", Port: 0}},
		{in: name255 + ":1", want: Addr{Name: name255, Port: 1}},
		{in: name255 + "a:1", wantErr: true},
		{in: ":80", wantErr: true},
		{in: "example.com", wantErr: true},
		{in: "example.com:http", wantErr: true},
		{in: "example.com:65536", wantErr: true},
		{in: "example.com:-1", wantErr: true},
		{in: "[::1:80", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAddr(tt.in)
			if tt.wantErr {
				checkErrs(t, err, []error{ErrBadAddress})
				return
			}
			checkErrs(t, err, nil)
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddrString(t *testing.T) {
	tests := []struct {
		a    Addr
		want string
	}{
		{Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 80}, "192.0.2.1:80"},
		{Addr{IP: netip.MustParseAddr("2001:db8::1"), Port: 443}, "[2001:db8::1]:443"},
		{Addr{IP: netip.MustParseAddr("fe80::1%eth0"), Port: 1}, "[fe80::1%eth0]:1"},
		{Addr{Name: "example.com", Port: 8080}, "example.com:8080"},
		{Addr{Name: "weird:name", Port: 1}, "[weird:name]:1"},
		{Addr{IP: netip.MustParseAddr("192.0.2.1"), Name: "ignored", Port: 2}, "192.0.2.1:2"},
		{Addr{}, ":0"},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.a, got, tt.want)
		}
	}
}

func TestAddrFromAddrPort(t *testing.T) {
	tests := []struct {
		in   string
		want Addr
	}{
		{"192.0.2.1:80", Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 80}},
		{"[::ffff:192.0.2.1]:80", Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 80}},
		{"[2001:db8::1]:53", Addr{IP: netip.MustParseAddr("2001:db8::1"), Port: 53}},
	}
	for _, tt := range tests {
		got := AddrFromAddrPort(netip.MustParseAddrPort(tt.in))
		if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.in, diff)
		}
		if got.AddrPort() != netip.AddrPortFrom(tt.want.IP, tt.want.Port) {
			t.Errorf("%s: AddrPort() = %v", tt.in, got.AddrPort())
		}
	}
	if ap := (Addr{Name: "example.com", Port: 1}).AddrPort(); ap.IsValid() {
		t.Errorf("AddrPort of a name = %v, want the zero AddrPort", ap)
	}
}

func TestAddrAppendBinary(t *testing.T) {
	tests := []struct {
		name    string
		a       Addr
		want    string
		wantErr bool
	}{
		{name: "ipv4", a: mustAddr("192.0.2.1:80"), want: "\x01\xc0\x00\x02\x01\x00\x50"},
		{name: "ipv6", a: mustAddr("[2001:db8::1]:443"),
			want: "\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\xbb"},
		{name: "v4-mapped-stays-ipv6", a: mustAddr("[::ffff:192.0.2.1]:1"),
			want: "\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xc0\x00\x02\x01\x00\x01"},
		{name: "zone-dropped", a: mustAddr("[fe80::1%eth0]:2"),
			want: "\x04\xfe\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x02"},
		{name: "domain", a: mustAddr("example.com:443"), want: "\x03\x0bexample.com\x01\xbb"},
		{name: "domain-255", a: Addr{Name: name255, Port: 0xabcd}, want: "\x03\xff" + name255 + "\xab\xcd"},
		{name: "ip-wins-over-name", a: Addr{IP: netip.MustParseAddr("10.0.0.1"), Name: "x", Port: 1}, want: "\x01\x0a\x00\x00\x01\x00\x01"},
		{name: "zero", a: Addr{}, wantErr: true},
		{name: "port-only", a: Addr{Port: 80}, wantErr: true},
		{name: "domain-256", a: Addr{Name: name255 + "b", Port: 1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("pre")
			got, err := tt.a.AppendBinary(prefix)
			if tt.wantErr {
				checkErrs(t, err, []error{ErrBadAddress})
				if string(got) != "pre" {
					t.Errorf("on error got %q, want the input unchanged", got)
				}
				if tt.a.IsValid() {
					t.Errorf("IsValid = true for an address that does not encode")
				}
				return
			}
			checkErrs(t, err, nil)
			if diff := cmp.Diff("pre"+tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if !tt.a.IsValid() {
				t.Errorf("IsValid = false for an address that encodes")
			}
		})
	}
}
