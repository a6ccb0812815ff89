package socks_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/internal/busypoll"
	"github.com/virgilproxy/socks/internal/testenv"
)

// TestServerBusyPoll checks that Server.BusyPoll turns busy polling on
// for as long as Serve runs, and that an accepted connection and the
// messages it relays keep it polling.
func TestServerBusyPoll(t *testing.T) {
	if busypoll.Enabled() {
		t.Fatal("busy polling on before any server")
	}
	echo := testenv.EchoServer(t)
	srv := &socks.Server{BusyPoll: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	before := busypoll.Kicks()
	d := &socks.Dialer{ProxyAddr: l.Addr().String()}
	c, err := d.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("ping")
	for i := 0; i < 2; i++ {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, msg); err != nil || string(msg) != "ping" {
			t.Fatalf("echo through the proxy: %q, %v", msg, err)
		}
	}
	c.Close()
	if !busypoll.Enabled() {
		t.Error("busy polling off while the server runs")
	}
	// The accept, and four relayed messages of 4 bytes.
	if got := busypoll.Kicks() - before; got < 5 {
		t.Errorf("%d kicks for a connection and four messages", got)
	}

	srv.Close()
	if err := <-served; !errors.Is(err, socks.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if busypoll.Enabled() {
		t.Error("busy polling still on after Serve returned")
	}
}
