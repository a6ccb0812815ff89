package socks_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/internal/testenv"
)

// holdTarget accepts connections on loopback and keeps them open with no
// goroutine per connection, so that it adds no stack to what
// TestIdleSessionStack measures.
func holdTarget(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	ln := testenv.Listen(t)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return len(conns) }
}

// serveUntilCleanup serves srv on loopback until the test ends.
func serveUntilCleanup(t *testing.T, srv *socks.Server) string {
	t.Helper()
	addr, done := serveOn(t, srv)
	t.Cleanup(func() { srv.Close(); <-done })
	return addr
}

// loggingServer is a server that logs at Info (to nowhere), so that the
// connect log line runs as in a daemon.
func loggingServer(t *testing.T) (*socks.Server, string) {
	srv := &socks.Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return srv, serveUntilCleanup(t, srv)
}

// countGoroutines counts the goroutines whose stack mentions fn.
func countGoroutines(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), fn)
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestIdleSessionStack holds idle CONNECT sessions and measures the stack
// memory each one adds. A Server with only the built-in handler detaches
// its sessions: the relay holds no goroutine while both sides are silent
// (relay.Start), so an idle session has no stack at all. With a Middleware
// the session's goroutine stays for the whole relay: 4 KiB, as the dial
// and the connect log line run on pool goroutines (on the session's
// goroutine they grew it to 8 KiB), and the relay's second direction is
// parked without a goroutine (relay.Options.ParkIdle; it was one more 2 KiB
// stack). The server logs at Info, so the log line is part of what is
// measured.
func TestIdleSessionStack(t *testing.T) {
	if raceEnabled {
		t.Skip("stack sizes under -race are not a production build's; test.sh runs this test without -race")
	}
	passThrough := socks.Middleware(func(next socks.Handler) socks.Handler { return next })
	for _, tc := range []struct {
		name       string
		middleware []socks.Middleware
		parkDelay  time.Duration
		relaying   int // goroutines in relay.Pipe per session
		limit      float64
	}{
		{"detached/at-once", nil, -1, 0, 512},
		{"middleware/at-once", []socks.Middleware{passThrough}, -1, 1, 5 << 10},
		// With the park delay, each session's relay has goroutines for
		// its first 100 ms. After a burst of sessions their freed stacks
		// leave stack spans partly used, shared with the stacks that
		// stay: 0.1 KiB per session detached, 2.3-2.9 KiB with Pipe
		// (whose goroutines start at the 4 KiB average stack size).
		// Steady traffic reuses those holes; a burst is the worst case.
		{"detached/delay", nil, 0, 0, 1 << 10},
		{"middleware/delay", []socks.Middleware{passThrough}, 0, 1, 7 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, accepted := holdTarget(t)
			srv := &socks.Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Middleware: tc.middleware, ParkDelay: tc.parkDelay}
			proxyAddr := serveUntilCleanup(t, srv)
			d := &socks.Dialer{ProxyAddr: proxyAddr}
			ctx := context.Background()

			// Warm up: the dial pool's goroutine and its grown stack exist
			// before the baseline is taken.
			warm, err := d.DialContext(ctx, "tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			defer warm.Close()
			waitFor(t, func() bool { return accepted() == 1 && srv.Sessions() == 1 }, "the warm-up session")

			const n = 1000
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			g0 := runtime.NumGoroutine()
			conns := make([]net.Conn, 0, n)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range n {
				c, err := d.DialContext(ctx, "tcp", target)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			// Each session: the client's conn here, held; the target's
			// conn, held by holdTarget; on the proxy, relay.Pipe's
			// goroutine or nothing.
			waitFor(t, func() bool {
				return accepted() == n+1 && srv.Sessions() == n+1 &&
					countGoroutines("relay.Pipe(") == tc.relaying*(n+1) &&
					runtime.NumGoroutine() <= g0+tc.relaying*n+2
			}, "the sessions to reach their relays")
			// The relay's goroutines of the park delay (the first 100 ms of
			// a detached session) have ended; a GC frees their stacks' spans,
			// as the one before the baseline did for earlier ones.
			runtime.GC()
			runtime.ReadMemStats(&after)
			perSession := (float64(after.StackInuse) - float64(before.StackInuse)) / n
			t.Logf("stack per idle session: %.0f bytes (%d goroutines more for %d sessions)", perSession, runtime.NumGoroutine()-g0, n)
			if perSession > tc.limit {
				t.Errorf("idle sessions hold %.0f bytes of stack each, want at most %.0f", perSession, tc.limit)
			}
		})
	}
}

// TestDeepPool checks that concurrent dials each get a pool goroutine,
// that idle ones are reused and then expire, and that Close ends them.
func TestDeepPool(t *testing.T) {
	target, _ := holdTarget(t)
	srv := &socks.Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	socks.SetDeepPoolIdleTime(srv, 200*time.Millisecond) // before the first dial
	proxyAddr := serveUntilCleanup(t, srv)
	d := &socks.Dialer{ProxyAddr: proxyAddr}
	const workerFn = "(*deepWorker).loop"

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c, err := d.DialContext(context.Background(), "tcp", target)
			if err != nil {
				t.Error(err)
				return
			}
			c.Close()
		})
	}
	wg.Wait()
	if w := countGoroutines(workerFn); w < 1 || w > 8 {
		t.Fatalf("%d dial workers after 8 dials, want 1 to 8", w)
	}
	idle := countGoroutines(workerFn)

	// Sequential dials reuse an idle worker instead of starting one.
	for range 5 {
		c, err := d.DialContext(context.Background(), "tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if w := countGoroutines(workerFn); w != idle {
		t.Errorf("%d dial workers after 5 more sequential dials, want the %d idle ones reused", w, idle)
	}

	// Idle workers and the sweeper go away after the pool's idle time.
	waitFor(t, func() bool {
		return countGoroutines(workerFn) == 0 && countGoroutines("(*deepPool).sweep") == 0
	}, "idle pool workers to expire")

	// Close ends workers at once.
	c, err := d.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if countGoroutines(workerFn) != 1 {
		t.Fatalf("want one dial worker after a dial")
	}
	srv.Close()
	waitFor(t, func() bool {
		return countGoroutines(workerFn) == 0 && countGoroutines("(*deepPool).sweep") == 0
	}, "Close to end the pool workers")
}
