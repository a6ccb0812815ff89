package msproxy

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"
)

// rawClient speaks to a Server packet by packet, as Dante's client would.
type rawClient struct {
	t *testing.T
	c *net.UDPConn
}

func (r *rawClient) roundTrip(m Message) []byte {
	r.t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, MaxPacketLen)
	n, err := r.c.Read(buf)
	if err != nil {
		r.t.Fatal(err)
	}
	if n < MinPacketLen {
		r.t.Fatalf("answer of %d bytes", n)
	}
	return buf[:n]
}

// TestServerDanteSequence follows DANTE.md 2.2 and 2.5 from the client's side: sequence
// numbers 0, 1, 2, ..., client-ack, server id, padding, and a resent answer for a duplicate.
func TestServerDanteSequence(t *testing.T) {
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	defer ln.Close()
	cd := &countingDialer{}
	server := startServer(t, &Server{Dialer: cd})
	sa, _ := net.ResolveUDPAddr("udp4", server)
	c, err := net.DialUDP("udp4", nil, sa)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &rawClient{t, c}

	b := r.roundTrip(&Hello{Header: Header{ClientID: FirstClientID, Version: Version, Command: CmdHello}, User: "u", Application: "TELNET.EXE"})
	ack, err := DecodeHelloAck(b)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Seq != 0 || ack.Ack != 0 || ack.ServerID == ([4]byte{}) {
		t.Errorf("HELLO_ACK header %+v", ack.Header)
	}
	if want := netip.MustParseAddrPort(server); ack.Control != want {
		t.Errorf("control address %v, want %v", ack.Control, want)
	}
	sid := ack.ServerID
	cid := [4]byte{7, 7, 7, 7}
	h := func(cmd uint16, seq, sack uint8) Header {
		return Header{ClientID: cid, Version: Version, ServerID: sid, Ack: sack, Seq: seq, Command: cmd}
	}
	b = r.roundTrip(&Hello{Header: h(CmdHello, 0, 0), User: "u", Application: "TELNET.EXE"})
	if p, _ := DecodePlain(b); p.Command != CmdUserInfoAck || p.Seq != 1 || p.ServerID != sid {
		t.Errorf("USERINFO_ACK header %+v", p.Header)
	}
	// RESOLVE with sequence 0 (server ack 1 < 2), then its duplicate.
	res := &Resolve{Header: h(CmdResolve, 0, 1), Name: "localhost"}
	b = r.roundTrip(res)
	ra, err := DecodeResolveAck(b)
	if err != nil || ra.Command != CmdResolveAck || ra.Seq != 2 || ra.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("RESOLVE_ACK %+v %v", ra, err)
	}
	if dup := r.roundTrip(res); !bytes.Equal(dup, b) {
		t.Error("duplicate RESOLVE not answered with the same packet")
	}
	dest := ln.Addr().(*net.TCPAddr).AddrPort()
	conn := &Connect{Header: h(CmdConnect, 1, 2), Dest: dest, LocalPort: 1}
	b = r.roundTrip(conn)
	ca, err := DecodeConnectAck(b)
	if err != nil || ca.Command != CmdConnectAck || ca.Seq != 3 || ca.Ack != 1 || ca.ServerID != sid {
		t.Fatalf("CONNECT_ACK %+v %v", ca, err)
	}
	if dup := r.roundTrip(conn); !bytes.Equal(dup, b) {
		t.Error("duplicate CONNECT not answered with the same packet")
	}
	if cd.n.Load() != 1 {
		t.Errorf("%d dials for a duplicated CONNECT", cd.n.Load())
	}
	tc, err := net.Dial("tcp4", ca.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	dc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	tc.Write([]byte("x"))
	dc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := dc.Read(make([]byte, 1)); err != nil {
		t.Errorf("relay: %v", err)
	}
	// Keepalive after CONNECTED: any answer, next sequence.
	p, _ := (&Plain{h(CmdConnected, 2, 3)}).Append(nil)
	c.Write(p)
	b = r.roundTrip(&Hello{Header: h(CmdHello, 3, 3)})
	if p, _ := DecodePlain(b); p.Seq != 4 || p.Ack != 3 {
		t.Errorf("keepalive answer %+v", p.Header)
	}
	// A packet with another server id is ignored: no answer.
	bad, _ := (&Hello{Header: Header{ClientID: cid, ServerID: [4]byte{1}, Seq: 4, Ack: 4, Command: CmdHello}}).Append(nil)
	c.Write(bad)
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, MaxPacketLen)); err == nil {
		t.Errorf("answer of %d bytes to a wrong server id", n)
	}
}
