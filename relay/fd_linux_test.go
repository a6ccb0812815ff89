package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// countFDs counts this process's socket and pipe descriptors.
func countFDs(t *testing.T) (sockets, pipes int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, already closed
		}
		switch {
		case strings.HasPrefix(l, "socket:"):
			sockets++
		case strings.HasPrefix(l, "pipe:"):
			pipes++
		}
	}
	return sockets, pipes
}

// sessConns are the four ends of a relayed test session: client app,
// proxy's client side, proxy's target side, target app.
type sessConns struct{ ca, pc, pt, ta *net.TCPConn }

// startSessions relays n loopback sessions accepted on ln, through Start
// when start is set and through Pipe with opt otherwise; every session's
// result goes to the channel. The connections are closed at cleanup.
func startSessions(t *testing.T, ctx context.Context, ln net.Listener, n int, opt Options, start bool) ([]sessConns, chan pipeOut) {
	t.Helper()
	sessions := make([]sessConns, n)
	results := make(chan pipeOut, n)
	t.Cleanup(func() {
		for _, s := range sessions {
			for _, c := range []*net.TCPConn{s.ca, s.pc, s.pt, s.ta} {
				if c != nil {
					c.Close()
				}
			}
		}
	})
	for i := range sessions {
		ca, pc := dialAccept(t, ln)
		pt, ta := dialAccept(t, ln)
		sessions[i] = sessConns{ca, pc, pt, ta}
		if start {
			if !Start(ctx, pc, pt, opt, func(r Result, err error) { results <- pipeOut{r, err} }) {
				t.Fatal("Start refused")
			}
			continue
		}
		go func() {
			r, err := Pipe(ctx, pc, pt, opt)
			results <- pipeOut{r, err}
		}()
	}
	return sessions, results
}

// TestDescriptorBudget checks that idle sessions hold their sockets and
// nothing else, and that after traffic the only extra descriptors are the
// bounded pool's.
func TestDescriptorBudget(t *testing.T) {
	t.Run("goroutines", func(t *testing.T) { testDescriptorBudget(t, false, false) })
	t.Run("park", func(t *testing.T) { testDescriptorBudget(t, true, false) })
	t.Run("start", func(t *testing.T) { testDescriptorBudget(t, true, true) })
}

func testDescriptorBudget(t *testing.T, park, start bool) {
	const n = 200
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	drainPool()
	sock0, pipe0 := countFDs(t)
	probes0 := parkedProbes.Load()
	parked0 := parkedDirs.Load()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sessions, results := startSessions(t, ctx, ln, n, Options{ParkIdle: park}, start)

	// Every direction (2 per session) probes once and waits; with park,
	// target->client starts parked without a probe.
	switch {
	case start:
		waitForT(t, "all directions parked", func() bool { return parkedDirs.Load()-parked0 == 2*n })
	case park:
		waitForT(t, "all directions parked", func() bool {
			return parkedProbes.Load()-probes0 >= n && parkedDirs.Load()-parked0 == n
		})
	default:
		waitForT(t, "all directions parked", func() bool { return parkedProbes.Load()-probes0 >= 2*n })
	}
	sock, pipes := countFDs(t)
	if sock-sock0 != 4*n {
		t.Errorf("idle: socket descriptors grew by %d, want %d", sock-sock0, 4*n)
	}
	if pipes != pipe0 {
		t.Errorf("idle: pipe descriptors went from %d to %d; idle sessions must hold none", pipe0, pipes)
	}
	if st := ReadPoolStats(); st != (PoolStats{}) {
		t.Errorf("idle: pool = %+v, want empty", st)
	}

	// Burst: every session moves 256 KiB each way at the same time.
	const burst = 256 << 10
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	payload := make([]byte, burst)
	for _, s := range sessions {
		for _, p := range [][2]*net.TCPConn{{s.ca, s.ta}, {s.ta, s.ca}} {
			from, to := p[0], p[1]
			wg.Go(func() {
				_ = from.SetWriteDeadline(time.Now().Add(30 * time.Second))
				if _, err := from.Write(payload); err != nil {
					errs <- err
				}
			})
			wg.Go(func() {
				_ = to.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := io.ReadFull(to, make([]byte, burst)); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("burst: %v", err)
	}

	// Back to idle: each direction gives its pipe back before parking.
	waitForT(t, "all pipes back", func() bool { return ReadPoolStats().InUse == 0 })
	if park {
		want := int64(n)
		if start {
			want = 2 * n
		}
		waitForT(t, "all directions parked again", func() bool { return parkedDirs.Load()-parked0 == want })
	}
	st := ReadPoolStats()
	sock, pipes = countFDs(t)
	if sock-sock0 != 4*n {
		t.Errorf("after burst: socket descriptors grew by %d, want %d", sock-sock0, 4*n)
	}
	if pipes-pipe0 != 2*st.Idle {
		t.Errorf("after burst: pipe descriptors grew by %d, want 2*%d pooled", pipes-pipe0, st.Idle)
	}
	if st.Idle < 1 || st.Idle > MaxIdlePipes {
		t.Errorf("after burst: %d idle pipes, want 1..%d", st.Idle, MaxIdlePipes)
	}

	cancel()
	for range n {
		select {
		case o := <-results:
			if !errors.Is(o.err, context.Canceled) {
				t.Errorf("Pipe error = %v, want context.Canceled", o.err)
			}
			if !o.res.Spliced || o.res.ClientToTarget != burst || o.res.TargetToClient != burst {
				t.Errorf("Result = %+v, want %d each way, spliced", o.res, burst)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Pipe did not return after cancel")
		}
	}
	drainPool()
}

// TestIdlePipesClosed: pipes left idle in the pool are closed after
// idlePipeTTL, so that a quiet process holds only its sessions' sockets.
func TestIdlePipesClosed(t *testing.T) {
	old := idlePipeTTL
	pool.mu.Lock()
	idlePipeTTL = 100 * time.Millisecond
	if pool.trim != nil {
		pool.trim.Stop() // armed by earlier tests with the long TTL
	}
	pool.trimArmed = false
	pool.mu.Unlock()
	defer func() {
		pool.mu.Lock()
		idlePipeTTL = old
		pool.mu.Unlock()
	}()
	drainPool()
	_, pipe0 := countFDs(t)

	s := startSession(t, context.Background(), modes[0], Options{})
	data := randomBytes(t, 256<<10)
	go s.clientApp.Write(data)
	_ = s.targetApp.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(s.targetApp, make([]byte, len(data))); err != nil {
		t.Fatal(err)
	}
	moved := time.Now() // about when the pipe went back to the pool
	waitForT(t, "the pipe back in the pool", func() bool { st := ReadPoolStats(); return st.InUse == 0 && st.Idle >= 1 })
	if _, pipes := countFDs(t); pipes == pipe0 {
		t.Fatal("no pooled pipe after a transfer: the test does not test the trim")
	}
	waitForT(t, "idle pipes to be closed", func() bool {
		_, pipes := countFDs(t)
		return ReadPoolStats().Idle == 0 && pipes == pipe0
	})
	if el := time.Since(moved); el < 50*time.Millisecond {
		t.Errorf("idle pipes closed after %v, before their TTL", el)
	}
}
