package socks5

import (
	"io"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDatagram(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		name    string
		in      string
		want    Datagram
		wantErr []error
	}{
		{name: "ipv4-dns", in: "\x00\x00\x00\x01\xc0\x00\x02\x35\x00\x35query",
			want: Datagram{Addr: Addr{IP: ip("192.0.2.53"), Port: 53}, Data: []byte("query")}},
		{name: "dante-reply-datagram", in: "\x00\x00\x00\x01\x7f\x00\x00\x01\x1f\x90\x01\x02",
			want: Datagram{Addr: Addr{IP: ip("127.0.0.1"), Port: 8080}, Data: []byte{1, 2}}},
		{name: "ipv6-empty-payload",
			in:   "\x00\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x7b",
			want: Datagram{Addr: Addr{IP: ip("2001:db8::1"), Port: 123}}},
		{name: "domain", in: "\x00\x00\x00\x03\x0ftracker.example\x1a\xe1\x00\x00",
			want: Datagram{Addr: Addr{Name: "tracker.example", Port: 6881}, Data: []byte{0, 0}}},
		{name: "frag-reported", in: "\x00\x00\x81\x01\x0a\x00\x00\x01\x00\x01x",
			want: Datagram{Frag: 0x81, Addr: Addr{IP: ip("10.0.0.1"), Port: 1}, Data: []byte("x")}},
		{name: "rsv-first", in: "\x01\x00\x00\x01\x0a\x00\x00\x01\x00\x01", wantErr: []error{ErrBadDatagram, ErrBadReserved}},
		{name: "rsv-second", in: "\x00\x80\x00\x01\x0a\x00\x00\x01\x00\x01", wantErr: []error{ErrBadDatagram, ErrBadReserved}},
		{name: "atyp-0", in: "\x00\x00\x00\x00\x0a\x00\x00\x01\x00\x01", wantErr: []error{ErrBadDatagram, ErrAddressType}},
		{name: "atyp-2", in: "\x00\x00\x00\x02", wantErr: []error{ErrBadDatagram, ErrAddressType}},
		{name: "domain-len-0", in: "\x00\x00\x00\x03\x00\x00\x35", wantErr: []error{ErrBadDatagram, ErrEmptyDomain}},
		{name: "empty", in: "", wantErr: []error{ErrBadDatagram, io.ErrUnexpectedEOF}},
		{name: "no-atyp", in: "\x00\x00\x00", wantErr: []error{ErrBadDatagram, io.ErrUnexpectedEOF}},
		{name: "domain-cut", in: "\x00\x00\x00\x03\x05abcde\x00", wantErr: []error{ErrBadDatagram, io.ErrUnexpectedEOF}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			got, err := ParseDatagram(in)
			checkErrs(t, err, tt.wantErr)
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// Data aliases the input: it is its tail.
			if len(got.Data) > 0 && &got.Data[len(got.Data)-1] != &in[len(in)-1] {
				t.Errorf("Data does not alias the input")
			}
		})
	}
}

func TestAppendDatagram(t *testing.T) {
	tests := []struct {
		name    string
		d       Datagram
		want    string
		wantErr []error
	}{
		{name: "ipv4", d: Datagram{Addr: mustAddr("192.0.2.53:53"), Data: []byte("query")},
			want: "\x00\x00\x00\x01\xc0\x00\x02\x35\x00\x35query"},
		{name: "ipv6-no-data", d: Datagram{Addr: mustAddr("[2001:db8::1]:123")},
			want: "\x00\x00\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x7b"},
		{name: "domain-frag", d: Datagram{Frag: 1, Addr: mustAddr("a.example:1"), Data: []byte{9}},
			want: "\x00\x00\x01\x03\x09a.example\x00\x01\x09"},
		{name: "bad-address", d: Datagram{Addr: Addr{Port: 1}, Data: []byte("x")}, wantErr: []error{ErrBadAddress}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendDatagram([]byte("pre"), tt.d)
			if !checkAppend(t, got, err, tt.want, tt.wantErr) {
				return
			}
			hdr, err := AppendDatagramHeader(nil, tt.d.Frag, tt.d.Addr)
			checkErrs(t, err, nil)
			if len(hdr) > MaxDatagramHeaderLen {
				t.Errorf("header of %d bytes exceeds MaxDatagramHeaderLen", len(hdr))
			}
			if diff := cmp.Diff(tt.want, string(append(hdr, tt.d.Data...))); diff != "" {
				t.Errorf("header + data (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMaxDatagramHeaderLen(t *testing.T) {
	hdr, err := AppendDatagramHeader(nil, 0, Addr{Name: name255, Port: 1})
	checkErrs(t, err, nil)
	if len(hdr) != MaxDatagramHeaderLen {
		t.Errorf("longest header is %d bytes, MaxDatagramHeaderLen = %d", len(hdr), MaxDatagramHeaderLen)
	}
	if len(hdr)-3 != MaxAddrLen {
		t.Errorf("longest address is %d bytes, MaxAddrLen = %d", len(hdr)-3, MaxAddrLen)
	}
}
