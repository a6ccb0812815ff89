package socks5

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{MethodNoAuth.String(), "none"},
		{MethodGSSAPI.String(), "gssapi"},
		{MethodUsernamePassword.String(), "username"},
		{MethodNoAcceptable.String(), "no-acceptable"},
		{Method(0x03).String(), "method(0x03)"},
		{Method(0x80).String(), "method(0x80)"},
		{CommandConnect.String(), "connect"},
		{CommandBind.String(), "bind"},
		{CommandUDPAssociate.String(), "udpassociate"},
		{Command(0).String(), "command(0x00)"},
		{Command(0xf0).String(), "command(0xf0)"},
		{ReplySucceeded.String(), "succeeded"},
		{ReplyGeneralFailure.String(), "general SOCKS server failure"},
		{ReplyNotAllowed.String(), "connection not allowed by ruleset"},
		{ReplyNetworkUnreachable.String(), "network unreachable"},
		{ReplyHostUnreachable.String(), "host unreachable"},
		{ReplyConnectionRefused.String(), "connection refused"},
		{ReplyTTLExpired.String(), "TTL expired"},
		{ReplyCommandNotSupported.String(), "command not supported"},
		{ReplyAddressTypeNotSupported.String(), "address type not supported"},
		{ReplyCode(9).String(), "reply(0x09)"},
		{ReplyCode(0xff).String(), "reply(0xff)"},
		{MethodSet{}.String(), "[]"},
		{MethodSetOf(MethodUsernamePassword, MethodNoAuth).String(), "[none username]"},
		{MethodSetOf(MethodNoAcceptable, 0x80, MethodGSSAPI).String(), "[gssapi method(0x80) no-acceptable]"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestReplyCodeValues(t *testing.T) {
	// RFC 1928 section 6 numbers the codes 0 to 8 in this order.
	codes := []ReplyCode{ReplySucceeded, ReplyGeneralFailure, ReplyNotAllowed, ReplyNetworkUnreachable,
		ReplyHostUnreachable, ReplyConnectionRefused, ReplyTTLExpired, ReplyCommandNotSupported,
		ReplyAddressTypeNotSupported}
	for i, c := range codes {
		if int(c) != i {
			t.Errorf("code %v = %d, want %d", c, c, i)
		}
	}
}

func TestMethodSet(t *testing.T) {
	tests := []struct {
		name string
		add  []Method
	}{
		{"empty", nil},
		{"one", []Method{MethodNoAuth}},
		{"dups", []Method{MethodUsernamePassword, MethodUsernamePassword, MethodNoAuth}},
		{"word-edges", []Method{0, 63, 64, 127, 128, 191, 192, 255}},
		{"private", []Method{0x80, 0xfe, 0x7f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s MethodSet
			for _, m := range tt.add {
				s.Add(m)
			}
			want := slices.Clone(tt.add)
			slices.Sort(want)
			want = slices.Compact(want)
			if s.Len() != len(want) {
				t.Errorf("Len = %d, want %d", s.Len(), len(want))
			}
			got := slices.Collect(s.All())
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("All (-want +got):\n%s", diff)
			}
			for m := range 256 {
				if s.Has(Method(m)) != slices.Contains(want, Method(m)) {
					t.Errorf("Has(%v) = %v", Method(m), s.Has(Method(m)))
				}
			}
			if s != MethodSetOf(tt.add...) {
				t.Errorf("MethodSetOf differs from Add")
			}
		})
	}
}

func TestMethodSetAllStops(t *testing.T) {
	s := MethodSetOf(1, 2, 3, 200)
	var got []Method
	for m := range s.All() {
		got = append(got, m)
		if len(got) == 2 {
			break
		}
	}
	if diff := cmp.Diff([]Method{1, 2}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
