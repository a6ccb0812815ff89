package testenv

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// CongestionControl returns the TCP congestion control of c's socket; an
// error fails the test.
func CongestionControl(t testing.TB, c syscall.Conn) string {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cc string
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		cc, gerr = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return cc
}
