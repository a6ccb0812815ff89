package msproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})

func hdr(cmd uint16, seq, ack uint8) Header {
	return Header{ClientID: [4]byte{1, 2, 3, 4}, Version: Version, ServerID: [4]byte{9, 8, 7, 6}, Ack: ack, Seq: seq, Command: cmd}
}

var (
	ip1 = netip.MustParseAddr("10.1.2.3")
	ip2 = netip.MustParseAddr("192.0.2.7")
)

// sampleMessages holds one of each message, as the client (req) or the server sends it.
func sampleMessages() []struct {
	name string
	req  bool
	m    Message
} {
	return []struct {
		name string
		req  bool
		m    Message
	}{
		{"HELLO connect", true, &Hello{Header: Header{ClientID: FirstClientID, Version: Version, Command: CmdHello}, User: "alice", Application: "TELNET.EXE"}},
		{"HELLO bind", true, &Hello{Header: hdr(CmdHello, 0, 0), Params: BindHelloParams(), User: "bob", Application: "TELNET.EXE", Host: "pc1"}},
		{"HELLO keepalive", true, &Hello{Header: hdr(CmdHello, 5, 7)}},
		{"USERINFO", true, &Hello{Header: hdr(CmdUserInfo, 0, 0), User: "u", Reserved: "r"}},
		{"RESOLVE", true, &Resolve{Header: hdr(CmdResolve, 0, 1), Name: "www.example.com"}},
		{"RESOLVE long", true, &Resolve{Header: hdr(CmdResolve, 0, 1), Name: string(bytes.Repeat([]byte("a"), MaxNameLen))}},
		{"CONNECT", true, &Connect{Header: hdr(CmdConnect, 1, 2), Dest: netip.AddrPortFrom(ip1, 80), LocalPort: 40000}},
		{"LISTEN", true, &Connect{Header: hdr(CmdListen, 2, 3), Dest: netip.AddrPortFrom(ip2, 5000)}},
		{"CONNECTED", true, &Plain{hdr(CmdConnected, 2, 3)}},
		{"BIND", true, &Bind{Header: hdr(CmdBind, 0, 1), Requested: netip.AddrPortFrom(ip1, 21), ListenPort: 3333}},
		{"BIND2", true, &Bind2{Header: hdr(CmdBind2, 1, 2), BindID: [4]byte{0xde, 0xad, 0xbe, 0xef}, LocalPort: 3333}},
		{"BINDINFO_ACK", true, &BindInfoAck{Header: hdr(CmdBindInfoAck, 3, 4), BindID: [4]byte{0xde, 0xad, 0xbe, 0xef},
			Endpoints: Endpoints{Opaque: 0x1234, Addr: netip.AddrPortFrom(ip2, 6000), Magic10: 10, Magic15: 15, ServerPort: 7000, SourcePort: 7001, Bound: netip.AddrPortFrom(ip1, 5000)}}},
		{"SESSIONEND", true, &Plain{hdr(CmdSessionEnd, 4, 5)}},
		{"HELLO_ACK", false, &HelloAck{Header: hdr(CmdHelloAck, 0, 0), Control: netip.AddrPortFrom(ip1, 1745)}},
		{"HELLO_ACK 0x10ff", false, &HelloAck{Header: hdr(0x10ff, 0, 0), Control: netip.AddrPortFrom(ip1, 1745)}},
		{"USERINFO_ACK", false, &Plain{hdr(CmdUserInfoAck, 1, 0)}},
		{"RESOLVE_ACK", false, &ResolveAck{Header: hdr(CmdResolveAck, 2, 0), Addr: ip2}},
		{"CONNECT_ACK", false, &ConnectAck{Header: hdr(CmdConnectAck, 3, 1), Endpoints: Endpoints{Addr: netip.AddrPortFrom(ip1, 4000), ServerPort: 4000, SourcePort: 4001, Bound: netip.AddrPortFrom(ip1, 4001)}}},
		{"BIND_ACK", false, &BindAck{Header: hdr(CmdBindAck, 2, 0), BindID: [4]byte{1, 1, 2, 3}, Bound: netip.AddrPortFrom(ip2, 5000)}},
		{"BIND2_ACK", false, &Plain{hdr(CmdBind2Ack, 3, 1)}},
		{"BINDINFO", false, &ConnectAck{Header: hdr(CmdBindInfo, 4, 1), Endpoints: Endpoints{Opaque: 7, Addr: netip.AddrPortFrom(ip2, 6000), Magic10: 1, Magic15: 2, ServerPort: 7000, SourcePort: 7000, Bound: netip.AddrPortFrom(ip1, 5000)}}},
		{"CONNECT_AUTHFAILED", false, &Plain{hdr(CmdConnectAuthFailed, 3, 1)}},
		{"BIND_AUTHFAILED", false, &Plain{hdr(CmdBindAuthFailed, 3, 1)}},
		{"refused", false, &Plain{hdr(CmdRefused, 3, 1)}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range sampleMessages() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.m.Append([]byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if string(b[:6]) != "prefix" {
				t.Fatal("Append overwrote the prefix")
			}
			b = b[6:]
			if len(b) < MinPacketLen || len(b) > MaxPacketLen {
				t.Fatalf("packet of %d bytes", len(b))
			}
			if string(b[24:28]) != Signature || b[28] != 0 {
				t.Errorf("signature: % x", b[24:29])
			}
			dec := DecodeReply
			if tc.req {
				dec = DecodeRequest
			}
			got, err := dec(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.m, got, cmpAddrs); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLayout checks the offsets of DANTE.md section 2 byte by byte.
func TestLayout(t *testing.T) {
	u16 := func(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }
	enc := func(m Message) []byte {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type check struct {
		off  int
		want uint16
	}
	tests := []struct {
		name   string
		m      Message
		length int
		words  []check
		bytes  map[int]byte
	}{
		{"header", &Plain{hdr(CmdSessionEnd, 0x11, 0x22)}, 172,
			[]check{{36, 0x251E}, {4, 0x0001}, {6, 0x0200}, {0, 0x0102}, {8, 0x0908}},
			map[int]byte{12: 0x22, 16: 0x11, 24: 'R', 25: 'W', 26: 'S', 27: 'P', 13: 0, 17: 0, 28: 0}},
		{"hello bind magic", &Hello{Header: hdr(CmdHello, 0, 0), Params: BindHelloParams(), User: "al", Application: "TELNET.EXE"}, 220 + 3 + 1 + 11 + 1,
			[]check{{172, 0x4800}, {176, 0x1400}, {180, 0x0400}, {188, 0x5704}, {190, 0x0004}, {192, 0x0100}, {196, 0x4A02}, {208, 0x3000}, {212, 0x4100}, {216, 0x3900}},
			map[int]byte{220: 'a', 221: 'l', 222: 0, 223: 0, 224: 'T', 234: 0, 235: 0}},
		{"keepalive", &Hello{Header: hdr(CmdHello, 3, 3)}, 224, nil, map[int]byte{38: 0, 219: 0, 220: 0, 223: 0}},
		{"resolve", &Resolve{Header: hdr(CmdResolve, 0, 1), Name: "ab"}, 172, nil, map[int]byte{38: 3, 39: 0, 55: 0, 56: 'a', 57: 'b', 58: 0}},
		{"resolve_ack", &ResolveAck{Header: hdr(CmdResolveAck, 0, 1), Addr: ip1}, 172, nil, map[int]byte{38: 0, 52: 10, 53: 1, 54: 2, 55: 3}},
		{"connect", &Connect{Header: hdr(CmdConnect, 0, 1), Dest: netip.AddrPortFrom(ip1, 0x1234), LocalPort: 0x5678}, 172,
			[]check{{56, 0x0200}, {58, 0x1234}, {72, 0x5678}}, map[int]byte{60: 10, 63: 3}},
		{"connect_ack", &ConnectAck{Header: hdr(CmdConnectAck, 0, 1), Endpoints: Endpoints{Opaque: 0x0a0b, Addr: netip.AddrPortFrom(ip1, 0x1111), Magic10: 0x01020304, Magic15: 0x05060708, ServerPort: 0x2222, SourcePort: 0x3333, Bound: netip.AddrPortFrom(ip2, 0x4444)}}, 172,
			[]check{{38, 0x0a0b}, {58, 0x1111}, {64, 0x0102}, {66, 0x0304}, {68, 0x0506}, {72, 0x2222}, {74, 0x3333}, {76, 0x4444}}, map[int]byte{60: 10, 78: 192, 81: 7}},
		{"bind", &Bind{Header: hdr(CmdBind, 0, 1), Requested: netip.AddrPortFrom(ip2, 0x1515), ListenPort: 0x6666}, 220,
			[]check{{42, 0x0100}, {60, 0x1515}, {64, 0x0200}, {66, 0x6666}}, map[int]byte{56: 192, 59: 7, 172: 0}},
		{"bind_ack", &BindAck{Header: hdr(CmdBindAck, 0, 1), BindID: [4]byte{1, 2, 3, 4}, Bound: netip.AddrPortFrom(ip1, 0x7777)}, 172,
			[]check{{44, 0x0102}, {46, 0x0304}, {58, 0x7777}}, map[int]byte{60: 10, 63: 3}},
		{"bind2", &Bind2{Header: hdr(CmdBind2, 1, 2), BindID: [4]byte{1, 2, 3, 4}, LocalPort: 0x6666}, 222,
			[]check{{42, 0x0100}, {44, 0x0102}, {56, 0x0500}, {60, 0x6666}, {64, 0x0200}, {66, 0x6666}}, nil},
		{"bindinfo_ack", &BindInfoAck{Header: hdr(CmdBindInfoAck, 1, 2), BindID: [4]byte{1, 2, 3, 4}, Endpoints: Endpoints{Opaque: 0x0a0b, Addr: netip.AddrPortFrom(ip1, 0x1111), ServerPort: 0x2222}}, 172,
			[]check{{38, 0x0a0b}, {42, 0x0100}, {44, 0x0102}, {50, 0x0100}, {52, 0x0102}, {54, 0x0304}, {56, 0x0200}, {58, 0x1111}, {72, 0x2222}}, nil},
		{"hello_ack", &HelloAck{Header: hdr(CmdHelloAck, 0, 0), Control: netip.AddrPortFrom(ip1, 1745)}, 172,
			[]check{{98, 1745}}, map[int]byte{100: 10, 103: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := enc(tc.m)
			if len(b) != tc.length {
				t.Errorf("length %d, want %d", len(b), tc.length)
			}
			for _, c := range tc.words {
				if got := u16(b, c.off); got != c.want {
					t.Errorf("word at %d = %#04x, want %#04x", c.off, got, c.want)
				}
			}
			for off, want := range tc.bytes {
				if b[off] != want {
					t.Errorf("byte at %d = %#02x, want %#02x", off, b[off], want)
				}
			}
		})
	}
}

func TestResolveAckOffset(t *testing.T) {
	b, _ := (&ResolveAck{Header: hdr(CmdResolveAck, 2, 0)}).Append(nil)
	b[38] = 5
	copy(b[57:], []byte{198, 51, 100, 9})
	m, err := DecodeResolveAck(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddr("198.51.100.9"); m.Addr != want {
		t.Errorf("address at 52+k: got %v, want %v", m.Addr, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := func(m Message) []byte { b, _ := m.Append(nil); return b }
	hello := valid(&Hello{Header: hdr(CmdHello, 0, 0), User: "x"})
	noNUL := bytes.Clone(hello)
	for i := helloStringsOff; i < len(noNUL); i++ {
		noNUL[i] = 'z'
	}
	resolve := valid(&Resolve{Header: hdr(CmdResolve, 0, 0), Name: "abc"})
	badLen := bytes.Clone(resolve)
	badLen[38] = 0
	longLen := bytes.Clone(resolve)
	longLen[38] = 200
	notTerm := bytes.Clone(resolve)
	notTerm[38] = 3 // "ab" then 'c' where the NUL should be
	helloAck := valid(&HelloAck{Header: hdr(CmdHelloAck, 0, 0)})
	noSig := bytes.Clone(helloAck)
	noSig[25] = 'X'
	sigNoNUL := bytes.Clone(helloAck)
	sigNoNUL[28] = 'x'
	wrongCmd := valid(&Plain{hdr(CmdUserInfoAck, 0, 0)})
	rack := valid(&ResolveAck{Header: hdr(CmdResolveAck, 0, 0)})
	rack[38] = 255
	tests := []struct {
		name string
		dec  func([]byte) error
		in   []byte
		want error
	}{
		{"header short", func(b []byte) error { _, err := DecodeHeader(b); return err }, make([]byte, 37), ErrShortPacket},
		{"plain short", func(b []byte) error { _, err := DecodePlain(b); return err }, make([]byte, 171), ErrShortPacket},
		{"plain long", func(b []byte) error { _, err := DecodePlain(b); return err }, make([]byte, 1025), ErrMalformed},
		{"hello string unterminated", func(b []byte) error { _, err := DecodeHello(b); return err }, noNUL, ErrMalformed},
		{"hello short", func(b []byte) error { _, err := DecodeHello(b); return err }, hello[:223], ErrShortPacket},
		{"resolve zero length", func(b []byte) error { _, err := DecodeResolve(b); return err }, badLen, ErrMalformed},
		{"resolve length beyond", func(b []byte) error { _, err := DecodeResolve(b); return err }, longLen, ErrMalformed},
		{"resolve not terminated", func(b []byte) error { _, err := DecodeResolve(b); return err }, notTerm, ErrMalformed},
		{"resolve_ack offset beyond", func(b []byte) error { _, err := DecodeResolveAck(b); return err }, rack, ErrMalformed},
		{"hello_ack no signature", func(b []byte) error { _, err := DecodeHelloAck(b); return err }, noSig, ErrMalformed},
		{"hello_ack signature not NUL-terminated", func(b []byte) error { _, err := DecodeHelloAck(b); return err }, sigNoNUL, ErrMalformed},
		{"hello_ack wrong command", func(b []byte) error { _, err := DecodeHelloAck(b); return err }, wrongCmd, ErrMalformed},
		{"request short", func(b []byte) error { _, err := DecodeRequest(b); return err }, make([]byte, 100), ErrShortPacket},
		{"reply short", func(b []byte) error { _, err := DecodeReply(b); return err }, make([]byte, 10), ErrShortPacket},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.dec(tc.in); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"ipv6 connect", &Connect{Header: hdr(CmdConnect, 0, 0), Dest: netip.AddrPortFrom(v6, 80)}, ErrUnsupported},
		{"ipv6 resolve_ack", &ResolveAck{Header: hdr(CmdResolveAck, 0, 0), Addr: v6}, ErrUnsupported},
		{"name too long", &Resolve{Header: hdr(CmdResolve, 0, 0), Name: string(make([]byte, 255))}, ErrMalformed},
		{"name with NUL", &Resolve{Header: hdr(CmdResolve, 0, 0), Name: "a\x00b"}, ErrMalformed},
		{"hello NUL", &Hello{Header: hdr(CmdHello, 0, 0), User: "a\x00"}, ErrMalformed},
		{"hello too long", &Hello{Header: hdr(CmdHello, 0, 0), User: string(bytes.Repeat([]byte("u"), 900))}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.m.Append(nil); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCommandErrorIs(t *testing.T) {
	sentinels := []error{ErrConnectAuthFailed, ErrBindAuthFailed, ErrAuthFailed, ErrAddrInUse, ErrRefused, ErrProtocol}
	tests := []struct {
		cmd  uint16
		want []error
	}{
		{0x081E, []error{ErrConnectAuthFailed, ErrAuthFailed}},
		{0x0804, []error{ErrBindAuthFailed, ErrAuthFailed}},
		{0x0701, []error{ErrAddrInUse}},
		{0x0411, []error{ErrRefused}},
		{0x4716, []error{ErrRefused}},
		{0x0709, []error{ErrProtocol}},
	}
	for _, tc := range tests {
		var got []error
		e := error(&CommandError{Command: tc.cmd, Request: CmdConnect})
		for _, s := range sentinels {
			if errors.Is(e, s) {
				got = append(got, s)
			}
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateErrors()); diff != "" {
			t.Errorf("%#04x (-want +got):\n%s", tc.cmd, diff)
		}
		if e.Error() == "" {
			t.Error("empty message")
		}
	}
}
