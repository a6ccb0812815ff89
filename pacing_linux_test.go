package socks_test

import (
	"context"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/internal/testenv"
)

// setCongestion returns a Control function that sets the congestion
// control cc, standing in for a system default, and then runs next.
func setCongestion(cc string, next func(string, string, syscall.RawConn) error) func(string, string, syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc)
		}); err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		return next(network, address, c)
	}
}

// needCongestion skips the test (fails it under CI) unless the kernel
// offers every congestion control in ccs.
func needCongestion(t *testing.T, ccs ...string) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	if err != nil {
		t.Fatal(err)
	}
	have := strings.Fields(string(b))
	for _, cc := range ccs {
		found := false
		for _, h := range have {
			found = found || h == cc
		}
		if !found {
			msg := "the kernel has no " + cc + " congestion control (available: " + strings.TrimSpace(string(b)) + ")"
			if testenv.InCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// acceptOne connects to ln with d and returns both ends.
func acceptOne(t *testing.T, ln net.Listener, d *net.Dialer, addr string) (accepted, dialed *net.TCPConn) {
	t.Helper()
	done := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(done)
			return
		}
		done <- c
	}()
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a, ok := <-done
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close() })
	return a.(*net.TCPConn), c.(*net.TCPConn)
}

// TestNoLoopbackPacing: a loopback socket with BBR is switched to reno
// before it connects, for a dial and for a listener's connections; a
// socket on any other address, and one whose congestion control does not
// pace, keep theirs.
func TestNoLoopbackPacing(t *testing.T) {
	needCongestion(t, "bbr", "reno")
	ctx := context.Background()
	bbrThen := setCongestion("bbr", socks.NoLoopbackPacing)

	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run("listen "+host, func(t *testing.T) {
			ln, err := (&net.ListenConfig{Control: bbrThen}).Listen(ctx, "tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				if host == "::1" {
					t.Skip("no IPv6 loopback:", err)
				}
				t.Fatal(err)
			}
			defer ln.Close()
			a, _ := acceptOne(t, ln, &net.Dialer{}, ln.Addr().String())
			if got := testenv.CongestionControl(t, a); got != "reno" {
				t.Errorf("accepted connection of a loopback listener: congestion control %q, want reno", got)
			}
		})
	}

	t.Run("dial loopback", func(t *testing.T) {
		ln := testenv.Listen(t)
		_, d := acceptOne(t, ln, &net.Dialer{Control: bbrThen}, ln.Addr().String())
		if got := testenv.CongestionControl(t, d); got != "reno" {
			t.Errorf("dialed loopback connection: congestion control %q, want reno", got)
		}
	})

	t.Run("wildcard listener kept", func(t *testing.T) {
		ln, err := (&net.ListenConfig{Control: bbrThen}).Listen(ctx, "tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		a, _ := acceptOne(t, ln, &net.Dialer{}, net.JoinHostPort("127.0.0.1", itoa(port)))
		if got := testenv.CongestionControl(t, a); got != "bbr" {
			t.Errorf("accepted connection of a wildcard listener: congestion control %q, want bbr kept", got)
		}
	})

	// The decision rests on the address alone: called for a
	// non-loopback address (nothing is sent), it leaves BBR in place.
	t.Run("other address kept", func(t *testing.T) {
		ln := testenv.Listen(t)
		rc, err := ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		if err := setCongestion("bbr", socks.NoLoopbackPacing)("tcp", "192.0.2.1:80", rc); err != nil {
			t.Fatal(err)
		}
		if got := testenv.CongestionControl(t, ln.(*net.TCPListener)); got != "bbr" {
			t.Errorf("socket for 192.0.2.1: congestion control %q, want bbr kept", got)
		}
		if err := socks.NoLoopbackPacing("udp", "127.0.0.1:80", rc); err != nil {
			t.Fatal(err)
		}
		if got := testenv.CongestionControl(t, ln.(*net.TCPListener)); got != "bbr" {
			t.Errorf("called for udp: congestion control %q, want bbr kept", got)
		}
	})

	t.Run("non-pacing kept", func(t *testing.T) {
		needCongestion(t, "cubic")
		ln := testenv.Listen(t)
		d := &net.Dialer{Control: setCongestion("cubic", socks.NoLoopbackPacing)}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			if os.Geteuid() != 0 {
				t.Skip("cubic is not allowed for this user:", err)
			}
			t.Fatal(err)
		}
		defer c.Close()
		if got := testenv.CongestionControl(t, c.(*net.TCPConn)); got != "cubic" {
			t.Errorf("dialed loopback connection: congestion control %q, want cubic kept", got)
		}
	})
}

// TestServerSocketsUnpaced: the sockets the library opens by default on
// loopback, socks.Listen's accepted connections and the default dialer's
// (a Server's to its targets, a Dialer's to its proxy), do not pace. Where the system default is BBR they get reno;
// otherwise they keep the default, like a plain socket.
func TestServerSocketsUnpaced(t *testing.T) {
	plainLn := testenv.Listen(t)
	plain, _ := acceptOne(t, plainLn, &net.Dialer{}, plainLn.Addr().String())
	system := testenv.CongestionControl(t, plain)
	want := system
	if strings.HasPrefix(system, "bbr") {
		want = "reno"
	}
	t.Logf("system default %s: want %s", system, want)

	ln, err := socks.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, _ := acceptOne(t, ln, &net.Dialer{}, ln.Addr().String())
	if got := testenv.CongestionControl(t, a); got != want {
		t.Errorf("socks.Listen's accepted connection: congestion control %q, want %q", got, want)
	}

	target := testenv.Listen(t)
	_, d := acceptOne(t, target, socks.DefaultDialer(), target.Addr().String())
	if got := testenv.CongestionControl(t, d); got != want {
		t.Errorf("default dialer's connection: congestion control %q, want %q", got, want)
	}
}
