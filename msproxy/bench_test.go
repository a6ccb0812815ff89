package msproxy

import (
	"net"
	"testing"
)

// BenchmarkDialConnect measures a full CONNECT (HELLO, HELLO, CONNECT, TCP, CONNECTED) and
// Close (SESSIONEND) against a Server on loopback, client and server allocations together.
func BenchmarkDialConnect(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{}
	go s.Serve(pc)
	defer s.Close()
	d := &Dialer{Server: pc.LocalAddr().String(), User: "bench", KeepAlive: -1}
	dest := ln.Addr().String()
	b.ReportAllocs()
	for b.Loop() {
		c, err := d.Dial("tcp", dest)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
