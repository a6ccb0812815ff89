package socks_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/internal/testenv"
)

// bindRoundTrip opens a BIND through d, connects a peer from peerIP to
// the bound address, and proves data flows both ways with the right
// addresses.
func bindRoundTrip(t *testing.T, d *socks.Dialer, expect string, peerIP string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := d.Listen(ctx, "tcp", expect)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	bound := ln.Addr().String()
	if strings.HasPrefix(bound, "0.0.0.0:") {
		t.Fatalf("bound address %s is unspecified", bound)
	}
	peerErr := make(chan error, 1)
	var peerLocal string
	go func() {
		dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(peerIP)}, Timeout: 5 * time.Second}
		c, err := dl.Dial("tcp", bound)
		if err != nil {
			peerErr <- err
			return
		}
		defer c.Close()
		peerLocal = c.LocalAddr().String()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "from client\n" {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			_, err = io.WriteString(c, "from peer\n")
		}
		peerErr <- err
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "from client\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "from peer\n" {
		t.Fatalf("client read %q, %v", line, err)
	}
	if err := <-peerErr; err != nil {
		t.Fatal(err)
	}
	if got := c.RemoteAddr().String(); got != peerLocal {
		t.Errorf("RemoteAddr = %s, want the peer %s", got, peerLocal)
	}
}

func TestBind(t *testing.T) {
	ours := quietServer(t, &socks.Server{})
	cases := []struct {
		name   string
		start  func(t *testing.T) string
		proto  socks.Protocol
		expect string
	}{
		{"virgil socks5 any peer", func(*testing.T) string { return ours }, socks.ProtocolSOCKS5, "0.0.0.0:0"},
		{"virgil socks5 expected peer", func(*testing.T) string { return ours }, socks.ProtocolSOCKS5, "127.0.0.1:0"},
		{"virgil socks4", func(*testing.T) string { return ours }, socks.ProtocolSOCKS4, "127.0.0.1:0"},
		{"dante socks5", func(t *testing.T) string { return testenv.Dante(t, "none").Addr }, socks.ProtocolSOCKS5, "127.0.0.1:0"},
		{"dante socks4", func(t *testing.T) string { return testenv.Dante(t, "none").Addr }, socks.ProtocolSOCKS4, "127.0.0.1:0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bindRoundTrip(t, &socks.Dialer{ProxyAddr: tc.start(t), Protocol: tc.proto}, tc.expect, "127.0.0.1")
		})
	}
}

// TestBindWrongPeerRefused: a peer from another IP is refused and the
// server keeps waiting for the expected one.
func TestBindWrongPeerRefused(t *testing.T) {
	ts := startServer(t, &socks.Server{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := (&socks.Dialer{ProxyAddr: ts.addr}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// 127.0.0.2 is another loopback address: not the expected peer.
	wrong, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	wrong.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := wrong.Read(make([]byte, 1)); err == nil {
		t.Fatalf("wrong peer read %d bytes, want its connection closed", n)
	}
	wrong.Close()
	waitFor(t, func() bool { return strings.Contains(ts.log.String(), "not the expected address") }, "refusal log line")

	right, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer right.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != right.LocalAddr().String() {
		t.Fatalf("accepted %s, want %s", c.RemoteAddr(), right.LocalAddr())
	}
}

// TestBindHonoursRequestedPort: BIND 0.0.0.0:P binds port P when free.
func TestBindHonoursRequestedPort(t *testing.T) {
	ours := quietServer(t, &socks.Server{})
	port := testenv.FreePort(t)
	ln, err := (&socks.Dialer{ProxyAddr: ours}).Listen(context.Background(), "tcp", "0.0.0.0:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := ln.Addr().(socks.Addr).Port; int(got) != port {
		t.Fatalf("bound port %d, want the requested %d", got, port)
	}
}

// TestBindTimeout: no peer within BindTimeout gives the TTL-expired reply.
func TestBindTimeout(t *testing.T) {
	ours := quietServer(t, &socks.Server{BindTimeout: 200 * time.Millisecond})
	ln, err := (&socks.Dialer{ProxyAddr: ours}).Listen(context.Background(), "tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = ln.Accept()
	var re *socks.ReplyError
	if !asReply(err, &re) || re.Code != socks.ReplyTTLExpired {
		t.Fatalf("Accept = %v, want TTL expired", err)
	}
}

// TestBindEarlyData: a byte the client sends before the peer connects does
// not end the wait, and reaches the peer first.
func TestBindEarlyData(t *testing.T) {
	ts := startServer(t, &socks.Server{})
	c := dialRaw(t, ts.addr)
	c.Write([]byte{5, 1, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0})
	first := make([]byte, 2+10)
	if _, err := io.ReadFull(c, first); err != nil || first[3] != 0 {
		t.Fatalf("first reply %x, %v", first, err)
	}
	bound := net.JoinHostPort(net.IP(first[6:10]).String(), itoa(int(first[10])<<8|int(first[11])))
	c.Write([]byte("e"))
	time.Sleep(50 * time.Millisecond) // let the server see the byte before the peer comes
	peer, err := net.Dial("tcp", bound)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	second := make([]byte, 10)
	if _, err := io.ReadFull(c, second); err != nil || second[1] != 0 {
		t.Fatalf("second reply %x, %v", second, err)
	}
	c.Write([]byte("arly"))
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 5)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "early" {
		t.Fatalf("peer read %q, %v", got, err)
	}
}

// TestBindPeerFilter: a PeerFilter set by middleware is asked about each
// BIND peer (Inbound); a refused peer is closed and the wait goes on.
func TestBindPeerFilter(t *testing.T) {
	var asked atomic.Int32
	filter := func(next socks.Handler) socks.Handler {
		return socks.HandlerFunc(func(ctx context.Context, w socks.ReplyWriter, r *socks.Request) error {
			r.PeerFilter = func(dir socks.Direction, peer socks.Addr) bool {
				return dir == socks.Inbound && asked.Add(1) > 1 // refuse the first peer only
			}
			return next.ServeSOCKS(ctx, w, r)
		})
	}
	ts := startServer(t, &socks.Server{Middleware: []socks.Middleware{filter}})
	ln, err := (&socks.Dialer{ProxyAddr: ts.addr}).Listen(context.Background(), "tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	refused, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	refused.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := refused.Read(make([]byte, 1)); err == nil {
		t.Fatal("the refused peer's connection stayed open")
	}
	refused.Close()
	accepted, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != accepted.LocalAddr().String() || asked.Load() != 2 {
		t.Fatalf("accepted %v after %d filter calls; want %v after 2", c.RemoteAddr(), asked.Load(), accepted.LocalAddr())
	}
}
