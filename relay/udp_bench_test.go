package relay

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virgilproxy/socks/socks5"
)

// BenchmarkUDPRelayRoundTrip measures one 64-byte echo round trip through
// an association, against the same echo sent directly.
func BenchmarkUDPRelayRoundTrip(b *testing.B) {
	echo := startFastEcho(b)
	b.Run("direct", func(b *testing.B) {
		c := udpListen(b, "udp4", "127.0.0.1:0")
		out, in := make([]byte, 64), make([]byte, 2048)
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.WriteToUDPAddrPort(out, echo); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.ReadFromUDPAddrPort(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("relay", func(b *testing.B) {
		ta := startAssoc(b, v4Config, UDPOptions{})
		rt := newUDPRoundTripper(b, ta.client, ta.relayAddr(), addrOf(echo), 64)
		rt.do(b)
		b.ReportAllocs()
		for b.Loop() {
			rt.do(b)
		}
		b.StopTimer()
		ta.stop(b)
	})
}

// BenchmarkUDPRelayThroughput sends 1,200-byte datagrams one way to a sink
// with at most udpWindow datagrams in flight (so that the socket buffers
// never overflow), directly and through an association. It reports MB/s of
// payload and the datagrams lost ("lost/op" should be 0).
func BenchmarkUDPRelayThroughput(b *testing.B) {
	const size = 1200
	b.Run("direct", func(b *testing.B) {
		benchThroughput(b, size, func(sink netip.AddrPort) (*net.UDPConn, netip.AddrPort, []byte) {
			return udpListen(b, "udp4", "127.0.0.1:0"), sink, make([]byte, size)
		})
	})
	b.Run("relay", func(b *testing.B) {
		benchThroughput(b, size, func(sink netip.AddrPort) (*net.UDPConn, netip.AddrPort, []byte) {
			ta := startAssoc(b, v4Config, UDPOptions{})
			msg, err := socks5.AppendDatagram(nil, socks5.Datagram{Addr: addrOf(sink), Data: make([]byte, size)})
			if err != nil {
				b.Fatal(err)
			}
			return ta.client, ta.relayAddr(), msg
		})
	})
}

const udpWindow = 64

func benchThroughput(b *testing.B, size int, setup func(sink netip.AddrPort) (*net.UDPConn, netip.AddrPort, []byte)) {
	sink := udpListen(b, "udp4", "127.0.0.1:0")
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			if _, _, err := sink.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	defer func() { sink.Close(); <-done }()
	c, to, msg := setup(udpAddrOf(sink))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var sent int64
	b.ResetTimer()
	for range b.N {
		for sent-got.Load() >= udpWindow {
			runtime.Gosched()
		}
		if _, err := c.WriteToUDPAddrPort(msg, to); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	deadline := time.Now().Add(time.Second)
	for got.Load() < sent && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	b.StopTimer()
	b.ReportMetric(float64(sent-got.Load())/float64(b.N), "lost/op")
}
