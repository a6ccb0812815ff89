package socks_test

import (
	"context"
	"net"
	"syscall"
	"testing"

	"github.com/virgilproxy/socks"
)

// onSocket runs get on c's socket descriptor; an error fails the test.
func onSocket(t *testing.T, c syscall.Conn, get func(fd int) error) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var gerr error
	if err := rc.Control(func(fd uintptr) { gerr = get(int(fd)) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
}

func keepAliveOn(t *testing.T, c net.Conn) bool {
	t.Helper()
	var v int
	onSocket(t, c.(*net.TCPConn), func(fd int) (err error) {
		v, err = syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		return err
	})
	return v != 0
}

// TestListenKeepAlive checks that connections accepted from socks.Listen
// have keepalive on: it is set on the listening socket and inherited, not
// set on each connection.
func TestListenKeepAlive(t *testing.T) {
	ln, err := socks.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, _ := acceptOne(t, ln, &net.Dialer{}, ln.Addr().String())
	if !keepAliveOn(t, c) {
		t.Error("accepted connection has SO_KEEPALIVE off")
	}

	// A plain listener's accepted sockets do not inherit anything: the
	// check above is not vacuous.
	plain, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		if c, err := net.Dial("tcp", plain.Addr().String()); err == nil {
			defer c.Close()
			var b [1]byte
			c.Read(b[:])
		}
	}()
	pc, err := plain.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if keepAliveOn(t, pc) {
		t.Error("a listener without keepalive gave an accepted connection SO_KEEPALIVE")
	}
}
