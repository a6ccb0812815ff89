package socks_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/internal/testenv"
)

// udpRoundTrip sends datagrams through an association to a UDP echo
// server, by IP and by name, and checks payloads and reported sources.
func udpRoundTrip(t *testing.T, proxyAddr string) {
	t.Helper()
	echo := testenv.UDPEchoServer(t, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := (&socks.Dialer{ProxyAddr: proxyAddr}).ListenPacket(ctx, "udp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	dests := []net.Addr{echo, socks.Addr{Name: "localhost", Port: uint16(echo.Port)}}
	for i, dest := range dests {
		msg := bytes.Repeat([]byte{byte('a' + i)}, 1200)
		if from := testenv.EchoDatagram(t, pc, dest, msg); from.String() != echo.String() {
			t.Errorf("to %v: source %v, want %v", dest, from, echo)
		}
	}
}

func TestListenPacketAgainstDante(t *testing.T) {
	udpRoundTrip(t, testenv.Dante(t, "none").Addr)
}

func TestListenPacketAgainstOurServer(t *testing.T) {
	udpRoundTrip(t, quietServer(t, &socks.Server{}))
}

// TestListenPacketBusyPoll runs the same exchange through a server whose
// associations busy-poll (relay's tests check that path is the one taken).
func TestListenPacketBusyPoll(t *testing.T) {
	udpRoundTrip(t, quietServer(t, &socks.Server{UDPBusyPoll: 200 * time.Microsecond}))
}

// rawAssociate performs a UDP ASSOCIATE by hand and returns the control
// connection and the relay's address.
func rawAssociate(t *testing.T, proxyAddr string, declared netip.AddrPort) (net.Conn, netip.AddrPort) {
	t.Helper()
	c := dialRaw(t, proxyAddr)
	req := []byte{5, 1, 0, 5, 3, 0, 1}
	ip4 := declared.Addr().As4()
	req = append(req, ip4[:]...)
	req = append(req, byte(declared.Port()>>8), byte(declared.Port()))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 2+10)
	if _, err := io.ReadFull(c, reply); err != nil || reply[3] != 0 {
		t.Fatalf("associate reply %x, %v", reply, err)
	}
	relayAP := netip.AddrPortFrom(netip.AddrFrom4([4]byte(reply[6:10])), uint16(reply[10])<<8|uint16(reply[11]))
	return c, relayAP
}

func udpHeader(dest netip.AddrPort) []byte {
	ip := dest.Addr().As4()
	return append([]byte{0, 0, 0, 1, ip[0], ip[1], ip[2], ip[3]}, byte(dest.Port()>>8), byte(dest.Port()))
}

// TestAssociationEndsWithControl: when the control connection drops, the
// relay's UDP socket closes at once (the kernel then answers datagrams to
// it with ICMP port unreachable, which a connected socket reads as
// ECONNREFUSED).
func TestAssociationEndsWithControl(t *testing.T) {
	echo := testenv.UDPEchoServer(t, "127.0.0.1")
	ts := startServer(t, &socks.Server{})
	ctrl, relayAP := rawAssociate(t, ts.addr, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	u, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(relayAP))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(5 * time.Second))
	msg := append(udpHeader(echo.AddrPort()), "alive"...)
	u.Write(msg)
	buf := make([]byte, 100)
	if n, err := u.Read(buf); err != nil || !bytes.HasSuffix(buf[:n], []byte("alive")) {
		t.Fatalf("before the drop: %q %v", buf[:n], err)
	}
	ctrl.Close()
	waitFor(t, func() bool { return ts.Sessions() == 0 }, "the association to end")
	u.Write(msg)
	_, err = u.Read(buf)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after the drop, read = %v; want ECONNREFUSED (the relay socket closed)", err)
	}
}

// TestAssociationSecurity: datagrams from a port other than the declared
// one, and from another address, are dropped and counted; a PeerFilter
// (per-datagram policy) drops what it refuses.
func TestAssociationSecurity(t *testing.T) {
	echo := testenv.UDPEchoServer(t, "127.0.0.1")
	blocked := testenv.UDPEchoServer(t, "127.0.0.1")
	ts := startServer(t, &socks.Server{Middleware: []socks.Middleware{func(next socks.Handler) socks.Handler {
		return socks.HandlerFunc(func(ctx context.Context, w socks.ReplyWriter, r *socks.Request) error {
			r.PeerFilter = func(dir socks.Direction, peer socks.Addr) bool { return peer.Port != uint16(blocked.Port) }
			return next.ServeSOCKS(ctx, w, r)
		})
	}}})
	good, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	ctrl, relayAP := rawAssociate(t, ts.addr, good.LocalAddr().(*net.UDPAddr).AddrPort())
	defer ctrl.Close()
	relay := net.UDPAddrFromAddrPort(relayAP)
	send := func(from *net.UDPConn, dest netip.AddrPort, payload string) {
		if _, err := from.WriteToUDP(append(udpHeader(dest), payload...), relay); err != nil {
			t.Fatal(err)
		}
	}
	otherPort, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer otherPort.Close()
	otherIP, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer otherIP.Close()
	send(otherPort, echo.AddrPort(), "from another port")
	send(otherIP, echo.AddrPort(), "from another address")
	send(good, blocked.AddrPort(), "to a refused peer")
	send(good, echo.AddrPort(), "allowed")
	good.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 200)
	n, _, err := good.ReadFromUDP(buf)
	if err != nil || !bytes.HasSuffix(buf[:n], []byte("allowed")) {
		t.Fatalf("client got %q, %v; want only the allowed echo", buf[:n], err)
	}
	for _, c := range []*net.UDPConn{otherPort, otherIP} {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, _, err := c.ReadFromUDP(buf); err == nil {
			t.Fatalf("a foreign sender got %q back", buf[:n])
		}
	}
	ctrl.Close()
	waitFor(t, func() bool {
		l := ts.log.String()
		return strings.Contains(l, "foreign=2") && strings.Contains(l, "policy=1")
	}, "the drop counts in the log")
}

// TestListenPacketIPv6: an association over IPv6 loopback.
func TestListenPacketIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	srv := &socks.Server{Logger: slog.New(slog.DiscardHandler)}
	go srv.Serve(l)
	defer srv.Close()
	echo := testenv.UDPEchoServer(t, "::1")
	pc, err := (&socks.Dialer{ProxyAddr: l.Addr().String()}).ListenPacket(context.Background(), "udp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(5 * time.Second))
	if from := testenv.EchoDatagram(t, pc, echo, []byte("v6")); from.String() != echo.String() {
		t.Fatalf("reply from %v, want %v", from, echo)
	}
}

// TestManyAssociations: 1000 associations opened and closed through the
// server leave no sockets behind (goroutines are checked by TestMain).
func TestManyAssociations(t *testing.T) {
	echo := testenv.UDPEchoServer(t, "127.0.0.1")
	addr := quietServer(t, &socks.Server{})
	d := &socks.Dialer{ProxyAddr: addr}
	before := countFDs(t)
	buf := make([]byte, 16)
	for i := 0; i < 1000; i++ {
		pc, err := d.ListenPacket(context.Background(), "udp", "")
		if err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			pc.SetDeadline(time.Now().Add(5 * time.Second))
			pc.WriteTo([]byte("x"), echo)
			if _, _, err := pc.ReadFrom(buf); err != nil {
				t.Fatal(err)
			}
		}
		pc.Close()
	}
	waitFor(t, func() bool { return countFDs(t) <= before+2 }, "descriptors to return to the baseline")
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}
