package socks_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/virgilproxy/socks"
)

// BenchmarkUDPRelay measures UDP through a SOCKS5 association against the
// same traffic sent directly, in one run: 64-byte round trips (rate and
// latency percentiles) and 1,200-byte one-way throughput with a bounded
// window of datagrams in flight (so there is no loss; any loss is
// reported). VIRGIL_BENCH_PROXY names an external proxy (our daemon, or
// Dante's sockd) to measure instead of an in-process server; pin it and
// the benchmark to different cores with taskset.
func BenchmarkUDPRelay(b *testing.B) {
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	echoAddr := echo.LocalAddr().(*net.UDPAddr)

	proxyAddr := benchProxy(b)
	direct := func(b *testing.B) net.PacketConn {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		return pc
	}
	viaProxy := func(b *testing.B) net.PacketConn {
		pc, err := (&socks.Dialer{ProxyAddr: proxyAddr}).ListenPacket(context.Background(), "udp", "")
		if err != nil {
			b.Fatal(err)
		}
		return pc
	}
	for _, path := range []struct {
		name string
		open func(*testing.B) net.PacketConn
	}{{"direct", direct}, {"proxy", viaProxy}} {
		b.Run("roundtrip64/"+path.name, func(b *testing.B) {
			pc := path.open(b)
			defer pc.Close()
			msg := make([]byte, 64)
			buf := make([]byte, 2048)
			lat := make([]time.Duration, 0, min(b.N, 1<<20))
			pc.SetDeadline(time.Now().Add(time.Minute))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, err := pc.WriteTo(msg, echoAddr); err != nil {
					b.Fatal(err)
				}
				if _, _, err := pc.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
				if len(lat) < cap(lat) {
					lat = append(lat, time.Since(start))
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
		b.Run("throughput1200/"+path.name, func(b *testing.B) {
			pc := path.open(b)
			defer pc.Close()
			const window = 32
			msg := make([]byte, 1200)
			buf := make([]byte, 2048)
			b.SetBytes(1200)
			sent, received, lost := 0, 0, 0
			b.ResetTimer()
			for sent < b.N && sent < window {
				pc.WriteTo(msg, echoAddr)
				sent++
			}
			for received+lost < b.N {
				pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, _, err := pc.ReadFrom(buf); err != nil {
					// Count what is outstanding as lost and refill the window.
					lost += sent - received - lost
				} else {
					received++
				}
				for sent < b.N && sent-received-lost < window {
					pc.WriteTo(msg, echoAddr)
					sent++
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(lost), "lost")
		})
	}
}
