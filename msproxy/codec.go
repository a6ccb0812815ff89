package msproxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Sizes and fixed values of the wire format (DANTE.md section 2.1 and 2.2).
const (
	// HeaderLen is the length of the common header that starts every packet.
	HeaderLen = 38
	// MinPacketLen is the length every packet is zero-padded to; shorter datagrams are rejected.
	MinPacketLen = 172
	// MaxPacketLen is the largest datagram read or written (Dante reads up to 1024 bytes).
	MaxPacketLen = 1024
	// Version is the value Dante's client writes at offset 4.
	Version uint32 = 0x00010200
	// Signature is the ASCII marker at offset 24.
	Signature = "RWSP"
	// HelloParamsLen is the length of HELLO's binary part, offsets 38 to 219.
	HelloParamsLen = 182
	// helloStringsOff is where HELLO's four NUL-terminated strings start.
	helloStringsOff = HeaderLen + HelloParamsLen // 220
)

// FirstClientID is the client id of the very first HELLO of a session.
var FirstClientID = [4]byte{0x0A, 0, 0, 0}

// Command codes (DANTE.md section 2.3). C→S are sent by clients, S→C by servers.
const (
	CmdHello             uint16 = 0x0500 // C→S: packet 1, packet 2 and keepalive
	CmdHelloAck          uint16 = 0x1000 // S→C: answer to packet 1; clients check only the high byte 0x10
	CmdUserInfo          uint16 = 0x1000 // C→S: defined but never sent by Dante (its packet 2 is a second HELLO)
	CmdUserInfoAck       uint16 = 0x0400 // S→C: answer to packet 2
	CmdAuth              uint16 = 0x4700 // C→S: NTLM step 1, disabled in Dante
	CmdAuthAck           uint16 = 0x4714 // S→C: NTLM step 1 answer, disabled in Dante
	CmdAuth2             uint16 = 0x4701 // C→S: NTLM step 2, disabled in Dante
	CmdAuth2Ack          uint16 = 0x4715 // S→C: NTLM step 2 answer, disabled in Dante
	CmdAuth2Ack2         uint16 = 0x4716 // S→C: NTLM step 2 answer (variant), disabled in Dante
	CmdResolve           uint16 = 0x070D // C→S: resolve a host name
	CmdResolveAck        uint16 = 0x070F // S→C: resolved IPv4 address
	CmdConnect           uint16 = 0x071E // C→S: TCP connect
	CmdConnectAck        uint16 = 0x0703 // S→C: where to open the data connection
	CmdConnected         uint16 = 0x042C // C→S: data connection is up; not answered
	CmdBind              uint16 = 0x0704 // C→S: bind step 1
	CmdBindAck           uint16 = 0x0706 // S→C: bind id and bound address (also named UDPASSOCIATE_ACK)
	CmdBind2             uint16 = 0x0707 // C→S: bind step 2
	CmdBind2Ack          uint16 = 0x0708 // S→C: bind step 2 answer; client-ack must be the BIND2 sequence
	CmdListen            uint16 = 0x0406 // C→S: bind step 3, CONNECT layout; not answered
	CmdBindInfo          uint16 = 0x0709 // S→C: unsolicited, a peer connected to the bound port
	CmdBindInfoAck       uint16 = 0x070A // C→S: answer to BINDINFO; the server answers it with any packet
	CmdUDPAssociate      uint16 = 0x0705 // C→S: defined, never used
	CmdUDPBind           uint16 = 0x070B // C→S: known to Wireshark only
	CmdSessionEnd        uint16 = 0x251E // C→S: end of session; not answered
	CmdConnectAuthFailed uint16 = 0x081E // S→C: CONNECT_AUTHFAILED in Dante's constants
	CmdBindAuthFailed    uint16 = 0x0804 // S→C: BIND_AUTHFAILED in Dante's constants
	CmdAddrInUse         uint16 = 0x0701 // S→C: ADDRINUSE, defined, unused by Dante
	// CmdRefused is the refusal this package's Server sends when the destination cannot be
	// reached. The value is our choice: Dante treats every 0x04xx and 0x4xxx answer as "refused".
	CmdRefused uint16 = 0x0401
)

// IsRefusal reports whether cmd, received where another answer was expected, means
// "connection refused" in Dante's client: high byte 0x04 or top nibble 0x4.
func IsRefusal(cmd uint16) bool { return cmd>>8 == 0x04 || cmd>>12 == 0x4 }

var be = binary.BigEndian

// Header is the common 38-byte header. The padding bytes and the signature are not
// represented: encoders write zeros and "RWSP", decoders ignore them (except DecodeHelloAck,
// which checks the signature as Dante does).
type Header struct {
	ClientID [4]byte // offset 0: client id (client→server), ignored packet id (server→client)
	Version  uint32  // offset 4: 0x00010200 from Dante
	ServerID [4]byte // offset 8: the server id, opaque
	Ack      uint8   // offset 12: sequence of the last packet received from the peer
	Seq      uint8   // offset 16: the sender's sequence number
	Command  uint16  // offset 36: command code
}

// Hdr returns h; it lets every message type satisfy Message through its embedded Header.
func (h *Header) Hdr() *Header { return h }

func (h *Header) put(p []byte) {
	copy(p[0:4], h.ClientID[:])
	be.PutUint32(p[4:], h.Version)
	copy(p[8:12], h.ServerID[:])
	p[12] = h.Ack
	p[16] = h.Seq
	copy(p[24:28], Signature)
	be.PutUint16(p[36:], h.Command)
}

// Message is implemented by pointers to every message type of this package.
type Message interface {
	// Hdr returns the message's header for reading or setting.
	Hdr() *Header
	// Append appends the encoded, padded packet to b.
	Append(b []byte) ([]byte, error)
}

// grow appends n zero bytes to b and returns the result and the new region.
func grow(b []byte, n int) ([]byte, []byte) {
	start := len(b)
	b = append(b, make([]byte, n)...)
	return b, b[start:]
}

func putAddr4(p []byte, a netip.Addr) error {
	if !a.IsValid() {
		return nil // zero address: 0.0.0.0
	}
	a = a.Unmap()
	if !a.Is4() {
		return fmt.Errorf("%w: %v is not an IPv4 address", ErrUnsupported, a)
	}
	v := a.As4()
	copy(p, v[:])
	return nil
}

func addr4(p []byte) netip.Addr { return netip.AddrFrom4([4]byte(p[:4])) }

// checkLen enforces the packet size rules shared by all message decoders.
func checkLen(b []byte, min int) error {
	if len(b) < MinPacketLen || len(b) < min {
		return fmt.Errorf("%w: %d bytes, need at least %d", ErrShortPacket, len(b), max(min, MinPacketLen))
	}
	if len(b) > MaxPacketLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(b), MaxPacketLen)
	}
	return nil
}

// DecodeHeader decodes the 38-byte header at the start of b. It needs only HeaderLen bytes.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrShortPacket, len(b), HeaderLen)
	}
	return Header{
		ClientID: [4]byte(b[0:4]),
		Version:  be.Uint32(b[4:]),
		ServerID: [4]byte(b[8:12]),
		Ack:      b[12],
		Seq:      b[16],
		Command:  be.Uint16(b[36:]),
	}, nil
}

// Plain is a header-only message, padded to 172 bytes: USERINFO_ACK, CONNECTED, BIND2_ACK,
// SESSIONEND, keepalive answers and the failure commands.
type Plain struct {
	Header
}

// Append appends the packet to b.
func (m *Plain) Append(b []byte) ([]byte, error) {
	b, p := grow(b, MinPacketLen)
	m.put(p)
	return b, nil
}

// DecodePlain decodes a packet as header only, checking the size rules.
func DecodePlain(b []byte) (Plain, error) {
	if err := checkLen(b, MinPacketLen); err != nil {
		return Plain{}, err
	}
	h, err := DecodeHeader(b)
	return Plain{h}, err
}

// Hello is HELLO (0x0500): packet 1, packet 2 and keepalive. The same layout serves USERINFO
// (0x1000), which Dante defines but never sends.
type Hello struct {
	Header
	// Params is the binary part, offsets 38 to 219: all zero for CONNECT and keepalive,
	// BindHelloParams for BIND.
	Params      [HelloParamsLen]byte
	User        string // offset 220: user name
	Reserved    string // always empty in Dante
	Application string // "TELNET.EXE" in Dante
	Host        string // client host name, empty in Dante
}

// BindHelloParams returns the binary HELLO part Dante sends before a BIND.
func BindHelloParams() [HelloParamsLen]byte {
	var p [HelloParamsLen]byte
	for _, w := range []struct{ off, v uint16 }{
		{172, 0x4800}, {176, 0x1400}, {180, 0x0400}, {188, 0x5704}, {190, 0x0004},
		{192, 0x0100}, {196, 0x4A02}, {208, 0x3000}, {212, 0x4100}, {216, 0x3900},
	} {
		be.PutUint16(p[w.off-HeaderLen:], w.v)
	}
	return p
}

// Append appends the packet to b. Strings must not contain NUL and the packet must fit in
// MaxPacketLen bytes.
func (m *Hello) Append(b []byte) ([]byte, error) {
	strs := [4]string{m.User, m.Reserved, m.Application, m.Host}
	n := helloStringsOff
	for _, s := range strs {
		if bytes.IndexByte([]byte(s), 0) >= 0 {
			return b, fmt.Errorf("%w: HELLO string contains NUL", ErrMalformed)
		}
		n += len(s) + 1
	}
	if n > MaxPacketLen {
		return b, fmt.Errorf("%w: HELLO of %d bytes exceeds %d", ErrMalformed, n, MaxPacketLen)
	}
	b, p := grow(b, n)
	m.put(p)
	copy(p[HeaderLen:], m.Params[:])
	off := helloStringsOff
	for _, s := range strs {
		off += copy(p[off:], s) + 1
	}
	return b, nil
}

// DecodeHello decodes HELLO (or USERINFO): the binary part and four NUL-terminated strings.
func DecodeHello(b []byte) (Hello, error) {
	if err := checkLen(b, helloStringsOff+4); err != nil {
		return Hello{}, err
	}
	h, _ := DecodeHeader(b)
	m := Hello{Header: h, Params: [HelloParamsLen]byte(b[HeaderLen:helloStringsOff])}
	var strs [4]string
	rest := b[helloStringsOff:]
	for i := range strs {
		j := bytes.IndexByte(rest, 0)
		if j < 0 {
			return Hello{}, fmt.Errorf("%w: HELLO string %d not NUL-terminated", ErrMalformed, i+1)
		}
		strs[i] = string(rest[:j])
		rest = rest[j+1:]
	}
	m.User, m.Reserved, m.Application, m.Host = strs[0], strs[1], strs[2], strs[3]
	return m, nil
}

// HelloAck is HELLO_ACK (0x10xx), the answer to packet 1. It carries the server id in the
// header and a control address that Dante stores but never uses.
type HelloAck struct {
	Header
	Control netip.AddrPort // offset 98: UDP port, offset 100: IPv4 address
}

// Append appends the packet to b.
func (m *HelloAck) Append(b []byte) ([]byte, error) {
	b, p := grow(b, MinPacketLen)
	m.put(p)
	be.PutUint16(p[98:], m.Control.Port())
	return b, putAddr4(p[100:], m.Control.Addr())
}

// DecodeHelloAck decodes HELLO_ACK. Like Dante it checks the "RWSP" signature (with a NUL
// after it) and that the command's high byte is 0x10.
func DecodeHelloAck(b []byte) (HelloAck, error) {
	if err := checkLen(b, MinPacketLen); err != nil {
		return HelloAck{}, err
	}
	if string(b[24:28]) != Signature || b[28] != 0 {
		return HelloAck{}, fmt.Errorf("%w: HELLO_ACK without the RWSP signature", ErrMalformed)
	}
	h, _ := DecodeHeader(b)
	if h.Command>>8 != CmdHelloAck>>8 {
		return HelloAck{}, fmt.Errorf("%w: command %#04x is not a HELLO_ACK", ErrMalformed, h.Command)
	}
	return HelloAck{Header: h, Control: netip.AddrPortFrom(addr4(b[100:]), be.Uint16(b[98:]))}, nil
}

// Resolve is RESOLVE (0x070D): a host name for the proxy to resolve.
type Resolve struct {
	Header
	Name string // at offset 56, NUL-terminated; its length with the NUL is at offset 38
}

// MaxNameLen is the longest name RESOLVE can carry (the length byte counts the NUL).
const MaxNameLen = 254

// Append appends the packet to b.
func (m *Resolve) Append(b []byte) ([]byte, error) {
	if len(m.Name) > MaxNameLen || bytes.IndexByte([]byte(m.Name), 0) >= 0 {
		return b, fmt.Errorf("%w: RESOLVE name of %d bytes (at most %d, no NUL)", ErrMalformed, len(m.Name), MaxNameLen)
	}
	b, p := grow(b, max(MinPacketLen, 56+len(m.Name)+1))
	m.put(p)
	p[38] = byte(len(m.Name) + 1)
	copy(p[56:], m.Name)
	return b, nil
}

// DecodeResolve decodes RESOLVE.
func DecodeResolve(b []byte) (Resolve, error) {
	if err := checkLen(b, MinPacketLen); err != nil {
		return Resolve{}, err
	}
	n := int(b[38])
	if n == 0 || 56+n > len(b) {
		return Resolve{}, fmt.Errorf("%w: RESOLVE name length %d in a %d-byte packet", ErrMalformed, n, len(b))
	}
	name := b[56 : 56+n-1]
	if b[56+n-1] != 0 || bytes.IndexByte(name, 0) >= 0 {
		return Resolve{}, fmt.Errorf("%w: RESOLVE name is not NUL-terminated at its length", ErrMalformed)
	}
	h, _ := DecodeHeader(b)
	return Resolve{Header: h, Name: string(name)}, nil
}

// ResolveAck is RESOLVE_ACK (0x070F). On the wire byte 38 is an offset k and the address
// is at 52+k; Append writes k = 0.
type ResolveAck struct {
	Header
	Addr netip.Addr // IPv4; 0.0.0.0 from this package's Server means "not found"
}

// Append appends the packet to b.
func (m *ResolveAck) Append(b []byte) ([]byte, error) {
	b, p := grow(b, MinPacketLen)
	m.put(p)
	return b, putAddr4(p[52:], m.Addr)
}

// DecodeResolveAck decodes RESOLVE_ACK, honouring the address offset at byte 38.
func DecodeResolveAck(b []byte) (ResolveAck, error) {
	if err := checkLen(b, MinPacketLen); err != nil {
		return ResolveAck{}, err
	}
	off := 52 + int(b[38])
	if off+4 > len(b) {
		return ResolveAck{}, fmt.Errorf("%w: RESOLVE_ACK address at %d beyond %d bytes", ErrMalformed, off, len(b))
	}
	h, _ := DecodeHeader(b)
	return ResolveAck{Header: h, Addr: addr4(b[off:])}, nil
}

// Connect is CONNECT (0x071E) and, with the same layout, LISTEN (0x0406).
type Connect struct {
	Header
	Dest      netip.AddrPort // offset 58: port, 60: IPv4 (LISTEN: the proxy's bound address)
	LocalPort uint16         // offset 72: the client's local port of the data connection (0 in LISTEN)
}

// Append appends the packet to b, with 0x0200 at offset 56.
func (m *Connect) Append(b []byte) ([]byte, error) {
	b, p := grow(b, MinPacketLen)
	m.put(p)
	be.PutUint16(p[56:], 0x0200)
	be.PutUint16(p[58:], m.Dest.Port())
	be.PutUint16(p[72:], m.LocalPort)
	return b, putAddr4(p[60:], m.Dest.Addr())
}

// DecodeConnect decodes CONNECT or LISTEN.
func DecodeConnect(b []byte) (Connect, error) {
	if err := checkLen(b, MinPacketLen); err != nil {
		return Connect{}, err
	}
	h, _ := DecodeHeader(b)
	return Connect{Header: h, Dest: netip.AddrPortFrom(addr4(b[60:]), be.Uint16(b[58:])), LocalPort: be.Uint16(b[72:])}, nil
}

// Endpoints is the CONNECT_ACK layout, shared by BINDINFO and echoed in BINDINFO_ACK.
type Endpoints struct {
	Opaque uint16 // offset 38: opaque in BINDINFO, echoed in BINDINFO_ACK (0 in CONNECT_ACK)
	// Addr is at 58 (port) and 60 (IPv4). CONNECT_ACK: where the client opens its data
	// connection. BINDINFO: the remote peer that connected to the bound port.
	Addr    netip.AddrPort
	Magic10 uint32 // offset 64, opaque
	Magic15 uint32 // offset 68, opaque
	// ServerPort is at 72. CONNECT_ACK: "serverport". BINDINFO: the source port the proxy
	// will connect to the client's listening socket from.
	ServerPort uint16
	SourcePort uint16         // offset 74: source port used on the client's behalf
	Bound      netip.AddrPort // offset 76: port, 78: IPv4 bound address
}

func (e *Endpoints) put(p []byte) error {
	be.PutUint16(p[38:], e.Opaque)
	be.PutUint16(p[58:], e.Addr.Port())
	be.PutUint32(p[64:], e.Magic10)
	be.PutUint32(p[68:], e.Magic15)
	be.PutUint16(p[72:], e.ServerPort)
	be.PutUint16(p[74:], e.SourcePort)
	be.PutUint16(p[76:], e.Bound.Port())
	if err := putAddr4(p[60:], e.Addr.Addr()); err != nil {
		return err
	}
	return putAddr4(p[78:], e.Bound.Addr())
}

func getEndpoints(b []byte) Endpoints {
	return Endpoints{
		Opaque:     be.Uint16(b[38:]),
		Addr:       netip.AddrPortFrom(addr4(b[60:]), be.Uint16(b[58:])),
		Magic10:    be.Uint32(b[64:]),
		Magic15:    be.Uint32(b[68:]),
		ServerPort: be.Uint16(b[72:]),
		SourcePort: be.Uint16(b[74:]),
		Bound:      netip.AddrPortFrom(addr4(b[78:]), be.Uint16(b[76:])),
	}
}

// ConnectAck is CONNECT_ACK (0x0703) and, with the same layout, BINDINFO (0x0709).
type ConnectAck struct {
	Header
	Endpoints
}

// Append appends the packet to b.
func (m *ConnectAck) Append(b []byte) ([]byte, error) {
	b, p := grow(b, MinPacketLen)
	m.Header.put(p)
	return b, m.Endpoints.put(p)
}

// DecodeConnectAck decodes CONNECT_ACK or BINDINFO.
func DecodeConnectAck(b []byte) (ConnectAck, error) {
	if err := checkLen(b, MinPacketLen); err != nil {
		return ConnectAck{}, err
	}
	h, _ := DecodeHeader(b)
	return ConnectAck{Header: h, Endpoints: getEndpoints(b)}, nil
}

// Bind is BIND (0x0704), 220 bytes.
type Bind struct {
	Header
	Requested  netip.AddrPort // offset 56: IPv4, 60: port
	ListenPort uint16         // offset 66: the client's local listening port
}

// BindLen is the length of a BIND packet, Bind2Len that of BIND2.
const (
	BindLen  = 220
	Bind2Len = 222
)

// Append appends the packet to b, with 0x0100 at 42 and 0x0200 at 64.
func (m *Bind) Append(b []byte) ([]byte, error) {
	b, p := grow(b, BindLen)
	m.put(p)
	be.PutUint16(p[42:], 0x0100)
	be.PutUint16(p[60:], m.Requested.Port())
	be.PutUint16(p[64:], 0x0200)
	be.PutUint16(p[66:], m.ListenPort)
	return b, putAddr4(p[56:], m.Requested.Addr())
}

// DecodeBind decodes BIND.
func DecodeBind(b []byte) (Bind, error) {
	if err := checkLen(b, MinPacketLen); err != nil {
		return Bind{}, err
	}
	h, _ := DecodeHeader(b)
	return Bind{Header: h, Requested: netip.AddrPortFrom(addr4(b[56:]), be.Uint16(b[60:])), ListenPort: be.Uint16(b[66:])}, nil
}

// BindAck is BIND_ACK (0x0706).
type BindAck struct {
	Header
	BindID [4]byte        // offset 44: opaque, echoed in BIND2 and BINDINFO_ACK
	Bound  netip.AddrPort // offset 58: port, 60: IPv4 the proxy bound for the client
}

// Append appends the packet to b.
func (m *BindAck) Append(b []byte) ([]byte, error) {
	b, p := grow(b, MinPacketLen)
	m.put(p)
	copy(p[44:], m.BindID[:])
	be.PutUint16(p[58:], m.Bound.Port())
	return b, putAddr4(p[60:], m.Bound.Addr())
}

// DecodeBindAck decodes BIND_ACK.
func DecodeBindAck(b []byte) (BindAck, error) {
	if err := checkLen(b, MinPacketLen); err != nil {
		return BindAck{}, err
	}
	h, _ := DecodeHeader(b)
	return BindAck{Header: h, BindID: [4]byte(b[44:48]), Bound: netip.AddrPortFrom(addr4(b[60:]), be.Uint16(b[58:]))}, nil
}

// Bind2 is BIND2 (0x0707), 222 bytes.
type Bind2 struct {
	Header
	BindID    [4]byte // offset 44
	LocalPort uint16  // the client's local port, written at 60 and 66 (decoded from 66)
}

// Append appends the packet to b, with 0x0100 at 42, 0x0500 at 56 and 0x0200 at 64.
func (m *Bind2) Append(b []byte) ([]byte, error) {
	b, p := grow(b, Bind2Len)
	m.put(p)
	be.PutUint16(p[42:], 0x0100)
	copy(p[44:], m.BindID[:])
	be.PutUint16(p[56:], 0x0500)
	be.PutUint16(p[60:], m.LocalPort)
	be.PutUint16(p[64:], 0x0200)
	be.PutUint16(p[66:], m.LocalPort)
	return b, nil
}

// DecodeBind2 decodes BIND2.
func DecodeBind2(b []byte) (Bind2, error) {
	if err := checkLen(b, MinPacketLen); err != nil {
		return Bind2{}, err
	}
	h, _ := DecodeHeader(b)
	return Bind2{Header: h, BindID: [4]byte(b[44:48]), LocalPort: be.Uint16(b[66:])}, nil
}

// BindInfoAck is BINDINFO_ACK (0x070A): the bind id and an echo of BINDINFO's endpoints.
type BindInfoAck struct {
	Header
	BindID [4]byte // at 44 and again at 52
	Endpoints
}

// Append appends the packet to b, with 0x0100 at 42 and 50 and 0x0200 at 56.
func (m *BindInfoAck) Append(b []byte) ([]byte, error) {
	b, p := grow(b, MinPacketLen)
	m.Header.put(p)
	be.PutUint16(p[42:], 0x0100)
	copy(p[44:], m.BindID[:])
	be.PutUint16(p[50:], 0x0100)
	copy(p[52:], m.BindID[:])
	be.PutUint16(p[56:], 0x0200)
	return b, m.Endpoints.put(p)
}

// DecodeBindInfoAck decodes BINDINFO_ACK (bind id from offset 44).
func DecodeBindInfoAck(b []byte) (BindInfoAck, error) {
	if err := checkLen(b, MinPacketLen); err != nil {
		return BindInfoAck{}, err
	}
	h, _ := DecodeHeader(b)
	return BindInfoAck{Header: h, BindID: [4]byte(b[44:48]), Endpoints: getEndpoints(b)}, nil
}

// DecodeRequest decodes a client→server packet by its command: *Hello (HELLO, 0x05FF and
// USERINFO), *Resolve, *Connect (CONNECT, LISTEN), *Bind, *Bind2, *BindInfoAck, and *Plain
// for everything else (CONNECTED, SESSIONEND, unknown commands).
func DecodeRequest(b []byte) (Message, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return nil, err
	}
	switch h.Command {
	case CmdHello, 0x05FF, CmdUserInfo:
		return ret(DecodeHello(b))
	case CmdResolve:
		return ret(DecodeResolve(b))
	case CmdConnect, CmdListen:
		return ret(DecodeConnect(b))
	case CmdBind:
		return ret(DecodeBind(b))
	case CmdBind2:
		return ret(DecodeBind2(b))
	case CmdBindInfoAck:
		return ret(DecodeBindInfoAck(b))
	}
	return ret(DecodePlain(b))
}

// DecodeReply decodes a server→client packet by its command: *HelloAck (0x10xx),
// *ResolveAck, *ConnectAck (CONNECT_ACK, BINDINFO), *BindAck, and *Plain for everything else
// (USERINFO_ACK, BIND2_ACK, failure commands, unknown commands).
func DecodeReply(b []byte) (Message, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return nil, err
	}
	switch {
	case h.Command>>8 == CmdHelloAck>>8:
		return ret(DecodeHelloAck(b))
	case h.Command == CmdResolveAck:
		return ret(DecodeResolveAck(b))
	case h.Command == CmdConnectAck || h.Command == CmdBindInfo:
		return ret(DecodeConnectAck(b))
	case h.Command == CmdBindAck:
		return ret(DecodeBindAck(b))
	}
	return ret(DecodePlain(b))
}

// ret turns a decoded value into a Message, or nil on error.
func ret[T any, P interface {
	*T
	Message
}](m T, err error) (Message, error) {
	if err != nil {
		return nil, err
	}
	return P(&m), nil
}
