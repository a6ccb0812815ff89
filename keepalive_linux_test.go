package socks_test

import (
	"context"
	"net"
	"syscall"
	"testing"

	"github.com/virgilproxy/socks"
)

func keepAliveOn(t *testing.T, c net.Conn) bool {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
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
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer c.Close()
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
