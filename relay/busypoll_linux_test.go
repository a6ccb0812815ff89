package relay

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/virgilproxy/socks/internal/busypoll"
)

func enableBusyPoll(t *testing.T) {
	t.Helper()
	if err := busypoll.Enable(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(busypoll.Disable)
}

// pipeApps runs Pipe between two loopback connections, their ends wrapped
// by wrap, and returns the client's application end, the target's, and
// Pipe's result; the test's end closes both application ends.
func pipeApps(t *testing.T, wrap func(c, t net.Conn) (net.Conn, net.Conn)) (app, peer *net.TCPConn, done <-chan error) {
	t.Helper()
	app, client := tcpPair(t)
	target, peer := tcpPair(t)
	t.Cleanup(func() { app.Close(); peer.Close() })
	c, tg := wrap(client, target)
	res := make(chan error, 1)
	go func() {
		_, err := Pipe(context.Background(), c, tg, Options{})
		client.Close()
		target.Close()
		res <- err
	}()
	return app, peer, res
}

// TestReadKicks checks which reads keep the busy poller polling: a
// direction's first small one and a small one after another, not a small
// one after a bulk read.
func TestReadKicks(t *testing.T) {
	enableBusyPoll(t)
	d := &dir{}
	steps := []struct {
		n    int
		kick bool
	}{
		{64, true},                 // first read of the direction
		{64, true},                 // small after small
		{64 << 10, false},          // a segment of a bulk transfer
		{100, false},               // an odd short read between segments
		{100, true},                // a second one: small messages again
		{BusyPollChunk, false},     // not small
		{BusyPollChunk - 1, false}, // small, after a large one
	}
	for i, s := range steps {
		before := busypoll.Kicks()
		d.read(s.n)
		d.n += int64(s.n)
		if got := busypoll.Kicks() > before; got != s.kick {
			t.Errorf("step %d, read of %d bytes: kicked %v, want %v", i, s.n, got, s.kick)
		}
	}
}

// TestSmallMessagesKick runs an exchange of small messages through Pipe,
// spliced and copied, and checks that the relay kicked the busy poller.
func TestSmallMessagesKick(t *testing.T) {
	enableBusyPoll(t)
	for _, m := range []struct {
		name string
		wrap func(c, t net.Conn) (net.Conn, net.Conn)
	}{
		{"spliced", bareTCP},
		{"copied", func(c, t net.Conn) (net.Conn, net.Conn) { return plainConn{c}, plainConn{t} }},
	} {
		t.Run(m.name, func(t *testing.T) {
			app, peer, done := pipeApps(t, m.wrap)
			before := busypoll.Kicks()
			msg := make([]byte, 64)
			for i := 0; i < 3; i++ {
				if _, err := app.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(peer, msg); err != nil {
					t.Fatal(err)
				}
				if _, err := peer.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(app, msg); err != nil {
					t.Fatal(err)
				}
			}
			// Each message waited for the one before it, so each was one
			// read of 64 bytes, and each of those kicks.
			if got := busypoll.Kicks() - before; got < 6 {
				t.Errorf("%d kicks for six 64-byte messages", got)
			}
			app.CloseWrite()
			peer.CloseWrite()
			if err := <-done; err != nil {
				t.Errorf("Pipe: %v", err)
			}
		})
	}
}

// TestBulkDoesNotKick sends 64 MiB one way through Pipe in writes of 1 MiB:
// the relay reads it in chunks of BusyPollChunk or more, which do not keep
// the busy poller polling (in three runs here: no kick at all; the rule
// for odd short reads between them is TestReadKicks').
func TestBulkDoesNotKick(t *testing.T) {
	enableBusyPoll(t)
	app, peer, done := pipeApps(t, bareTCP)
	received := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, peer)
		received <- n
	}()
	before := busypoll.Kicks()
	buf := make([]byte, 1<<20)
	for i := 0; i < 64; i++ {
		if _, err := app.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	app.CloseWrite()
	if n := <-received; n != 64<<20 {
		t.Fatalf("target received %d bytes, want %d", n, 64<<20)
	}
	peer.CloseWrite()
	if err := <-done; err != nil {
		t.Errorf("Pipe: %v", err)
	}
	// Kicking on every read gave 73; a few pairs of short reads in a row
	// are allowed for.
	if got := busypoll.Kicks() - before; got > 8 {
		t.Errorf("%d kicks while relaying 64 MiB in 1 MiB writes", got)
	}
}
