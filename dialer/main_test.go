package dialer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/virgilproxy/socks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// journal is an ordered, concurrency-safe record of what the test proxies
// saw: "name dest user".
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, s)
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

// proxyServer is an in-process socks.Server on loopback whose requests are
// written to a journal as "name dest".
type proxyServer struct {
	*socks.Server
	name string
	addr string
}

// startProxy starts a socks.Server on 127.0.0.1, recording each request in
// j under name. configure may change the server before it starts.
func startProxy(t *testing.T, name string, j *journal, configure func(*socks.Server)) *proxyServer {
	t.Helper()
	srv := &socks.Server{Logger: slog.New(slog.DiscardHandler)}
	srv.Middleware = []socks.Middleware{func(next socks.Handler) socks.Handler {
		return socks.HandlerFunc(func(ctx context.Context, w socks.ReplyWriter, r *socks.Request) error {
			entry := name + " " + r.Protocol.String() + " " + r.Dest.String()
			if r.Identity != nil && r.Identity.User != "" {
				entry += " user=" + r.Identity.User
			}
			j.add(entry)
			return next.ServeSOCKS(ctx, w, r)
		})
	}}
	if configure != nil {
		configure(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return &proxyServer{Server: srv, name: name, addr: l.Addr().String()}
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// echoRoundTrip sends a line over c and checks that it comes back.
func echoRoundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := fmt.Sprintf("hello %p\n", c)
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != msg {
		t.Fatalf("echo returned %q, want %q", buf, msg)
	}
}

// countingDialer is a net.Dialer that counts its dials.
type countingDialer struct {
	n atomic.Int32
	d net.Dialer
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	return c.d.DialContext(ctx, network, addr)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}
