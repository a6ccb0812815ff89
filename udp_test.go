package socks_test

import (
	"bytes"
	"context"
	"net"
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
		if _, err := pc.WriteTo(msg, dest); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2000)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("to %v: %v", dest, err)
		}
		if !bytes.Equal(buf[:n], msg) {
			t.Fatalf("to %v: echoed %d bytes that differ", dest, n)
		}
		if from.String() != echo.String() {
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
