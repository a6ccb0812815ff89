package socks_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"

	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/auth"
	"github.com/virgilproxy/socks/httpconnect"
)

// BenchmarkHandshake measures the server's handshake path per protocol:
// accept, detection, negotiation, request parsing, the handler chain and
// the reply, over loopback TCP. The handler replies without dialing, so
// the numbers are the proxy's own cost. Allocations include the client's
// few.
func BenchmarkHandshake(b *testing.B) {
	okHandler := socks.HandlerFunc(func(ctx context.Context, w socks.ReplyWriter, r *socks.Request) error {
		return w.Reply(socks.ReplySucceeded, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242})
	})
	cases := []struct {
		name    string
		auth    bool
		request []byte
		reply   int // bytes of reply to read
	}{
		{"socks5", false, []byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80}, 2 + 10},
		{"socks5-domain", false, append([]byte{5, 1, 0, 5, 1, 0, 3, 11}, append([]byte("example.com"), 0, 80)...), 2 + 10},
		{"socks5-auth", true, []byte{5, 1, 2, 1, 1, 'u', 1, 'p', 5, 1, 0, 1, 127, 0, 0, 1, 0, 80}, 2 + 2 + 10},
		{"socks4", false, []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, 8},
		{"socks4a", false, append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, append([]byte("example.com"), 0)...), 8},
		{"http", false, []byte("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: bench\r\n\r\n"), len(httpconnect.AppendResponse(nil, 200))},
	}
	// The baseline is the least a Go server can do for the same exchange:
	// accept, one goroutine, read the request, write a fixed reply. The
	// difference between a case and the baseline is the proxy's own cost.
	b.Run("baseline", func(b *testing.B) {
		l := serveEach(b, func(c net.Conn) {
			var buf [64]byte
			io.ReadFull(c, buf[:13])
			c.Write(buf[:12])
		})
		runHandshakes(b, l.Addr().String(), cases[0].request, 12)
	})
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			srv := &socks.Server{Handler: okHandler, HTTPConnect: true, Logger: slog.New(slog.DiscardHandler)}
			if tc.auth {
				srv.Authenticator = auth.Users{"u": "p"}
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(l)
			defer srv.Close()
			runHandshakes(b, l.Addr().String(), tc.request, tc.reply)
		})
	}
}

// runHandshakes connects b.N times, sends request and reads a reply of
// replyLen bytes.
func runHandshakes(b *testing.B, addr string, request []byte, replyLen int) {
	reply := make([]byte, replyLen)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(request); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkTransfer moves 64 MiB per iteration from a client to a sink
// server, directly and through the proxy, over loopback. Compare the two
// MB/s figures for the proxy's throughput ratio. VIRGIL_BENCH_PROXY names
// an external SOCKS5 proxy (for example the sockd daemon) to measure
// instead of an in-process server.
func BenchmarkTransfer(b *testing.B) {
	const chunk = 64 << 20
	sink := serveEach(b, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		var ack [8]byte
		binary.BigEndian.PutUint64(ack[:], uint64(n))
		c.Write(ack[:])
	})
	proxyAddr := benchProxy(b)
	buf := make([]byte, 256<<10)
	run := func(b *testing.B, dial func() (net.Conn, error)) {
		b.SetBytes(chunk)
		for i := 0; i < b.N; i++ {
			c, err := dial()
			if err != nil {
				b.Fatal(err)
			}
			for sent := 0; sent < chunk; sent += len(buf) {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(interface{ CloseWrite() error }).CloseWrite()
			var ack [8]byte
			if _, err := io.ReadFull(c, ack[:]); err != nil || binary.BigEndian.Uint64(ack[:]) != chunk {
				b.Fatalf("sink acknowledged %d bytes, %v", binary.BigEndian.Uint64(ack[:]), err)
			}
			c.Close()
		}
	}
	b.Run("direct", func(b *testing.B) {
		run(b, func() (net.Conn, error) { return net.Dial("tcp", sink.Addr().String()) })
	})
	b.Run("proxy", func(b *testing.B) {
		d := &socks.Dialer{ProxyAddr: proxyAddr}
		run(b, func() (net.Conn, error) { return d.Dial("tcp", sink.Addr().String()) })
	})
}

// BenchmarkDial compares a CONNECT through socks.Dialer with one through
// x/net/proxy's SOCKS5 dialer, against the same server and target, per
// dial (connect, handshake, close). Allocations are the client's and the
// in-process server's together.
func BenchmarkDial(b *testing.B) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	srv := &socks.Server{Logger: slog.New(slog.DiscardHandler)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	dest := target.Addr().String()

	xnet, _ := proxy.SOCKS5("tcp", l.Addr().String(), nil, proxy.Direct)
	dialers := []struct {
		name string
		d    proxy.ContextDialer
	}{
		{"virgil", &socks.Dialer{ProxyAddr: l.Addr().String()}},
		{"xnet", xnet.(proxy.ContextDialer)},
	}
	for _, dd := range dialers {
		b.Run(dd.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c, err := dd.d.DialContext(ctx, "tcp", dest)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// serveEach runs handle, then closes the connection, for every connection
// accepted on a new loopback listener, until the benchmark ends.
func serveEach(b *testing.B, handle func(net.Conn)) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l
}

// benchProxy returns the proxy to measure: VIRGIL_BENCH_PROXY when set (an
// external daemon, pinned by the caller), else an in-process server that
// stops with the benchmark.
func benchProxy(b *testing.B) string {
	if addr := os.Getenv("VIRGIL_BENCH_PROXY"); addr != "" {
		return addr
	}
	srv := &socks.Server{Logger: slog.New(slog.DiscardHandler)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}
