package testenv

import (
	"bytes"
	"net"
	"testing"
)

// UDPEchoServer starts a UDP server on ip (e.g. "127.0.0.1" or "::1")
// that sends every datagram back to its sender. It stops at the end of
// the test.
func UDPEchoServer(t testing.TB, ip string) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().(*net.UDPAddr)
}

// EchoDatagram sends msg to dest on pc, reads one datagram back, fails the
// test unless it carries msg, and returns where it came from. It does not
// set deadlines: the caller bounds pc.
func EchoDatagram(t testing.TB, pc net.PacketConn, dest net.Addr, msg []byte) net.Addr {
	t.Helper()
	if _, err := pc.WriteTo(msg, dest); err != nil {
		t.Fatalf("to %v: %v", dest, err)
	}
	buf := make([]byte, len(msg)+1024)
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("to %v: %v", dest, err)
	}
	if !bytes.Equal(buf[:n], msg) {
		t.Fatalf("to %v: echoed %d bytes that differ from the %d sent", dest, n, len(msg))
	}
	return from
}
