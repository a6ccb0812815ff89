package msproxy

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/virgilproxy/socks/internal/testenv"
)

// TestDefaultsUnpaced: a Server's default dialer and listen config keep
// pacing off loopback sockets (see socks.NoLoopbackPacing): where the
// system default is BBR they give reno, otherwise the system default.
func TestDefaultsUnpaced(t *testing.T) {
	s := &Server{}
	ln, err := s.listenConfig().Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(d interface {
		DialContext(context.Context, string, string) (net.Conn, error)
	}) (dialed, acc net.Conn) {
		t.Helper()
		c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		a := <-accepted
		t.Cleanup(func() { a.Close() })
		return c, a
	}

	plain, _ := dial(&net.Dialer{})
	want := testenv.CongestionControl(t, plain.(*net.TCPConn))
	if strings.HasPrefix(want, "bbr") {
		want = "reno"
	}
	d, a := dial(s.dialer())
	if got := testenv.CongestionControl(t, d.(*net.TCPConn)); got != want {
		t.Errorf("default dialer's loopback connection: congestion control %q, want %q", got, want)
	}
	if got := testenv.CongestionControl(t, a.(*net.TCPConn)); got != want {
		t.Errorf("default listen config's accepted connection: congestion control %q, want %q", got, want)
	}
}
