package main

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks/internal/testenv"
)

// TestRelay sends bytes through gofloor to a loopback echo server, half-closes,
// and expects them back followed by EOF: a yardstick that does not relay
// measures nothing.
func TestRelay(t *testing.T) {
	echo := testenv.EchoServer(t)

	ln := startFloor(t)

	d, err := proxy.SOCKS5("tcp", ln.Addr().String(), nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	for _, dest := range []string{echo, "localhost:" + portOf(t, echo)} {
		c, err := d.Dial("tcp", dest)
		if err != nil {
			t.Fatalf("dial %s through gofloor: %v", dest, err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := bytes.Repeat([]byte("gofloor "), 8192) // 64 KiB
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("%s: read: %v", dest, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%s: echoed %d bytes, want the %d sent", dest, len(got), len(msg))
		}
	}
}

// TestRefusesBind: a command other than CONNECT gets "command not supported".
func TestRefusesBind(t *testing.T) {
	ln := startFloor(t)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte{5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80})
	var got [12]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		t.Fatal(err)
	}
	want := []byte{5, 0, 5, replyCommandNotSupp, 0, 1, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(got[:], want) {
		t.Fatalf("reply % x, want % x", got, want)
	}
}

// startFloor serves gofloor on a loopback port until the test ends.
func startFloor(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serve(ln)
	return ln
}

func portOf(t *testing.T, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
