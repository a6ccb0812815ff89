package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// parkerRunning reports whether the parker's goroutine exists.
func parkerRunning() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Contains(string(buf), "(*parker).loop")
}

// TestParkIdle checks what parking is for: idle sessions keep one
// goroutine each, a silent target's direction wakes when the target
// speaks and parks again after, and the parker's goroutine ends once no
// session uses it.
func TestParkIdle(t *testing.T) {
	for _, delay := range []time.Duration{-1, 0} {
		name := "delay"
		if delay < 0 {
			name = "at-once"
		}
		t.Run("pipe/"+name, func(t *testing.T) { testParkIdle(t, false, delay) })
		t.Run("start/"+name, func(t *testing.T) { testParkIdle(t, true, delay) })
	}
}

// testParkIdle: with start, sessions are begun by Start, which holds no
// goroutine at all while idle, and both directions park. delay is
// Options.ParkDelay.
func testParkIdle(t *testing.T, start bool, delay time.Duration) {
	const n = 300
	perSession := 1 // goroutines: Pipe's caller
	parkedPer := 1  // parked directions
	if start {
		perSession, parkedPer = 0, 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	waitForT(t, "a parker left by earlier tests to end", func() bool { return !parkerRunning() })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	parked0 := parkedDirs.Load()
	g0 := runtime.NumGoroutine()
	sessions, results := startSessions(t, ctx, ln, n, Options{ParkIdle: true, ParkDelay: delay}, start)
	waitForT(t, "every parkable direction parked", func() bool { return parkedDirs.Load()-parked0 == int64(parkedPer*n) })
	// One goroutine per session (Pipe's caller; none with Start) and the
	// parker's.
	waitForT(t, fmt.Sprintf("at most %d goroutines for %d idle sessions", perSession*n+1, n), func() bool {
		return runtime.NumGoroutine()-g0 <= perSession*n+1
	})
	if !parkerRunning() {
		t.Error("no parker goroutine while directions are parked")
	}

	// Each target speaks, then each client; the other end gets it; the
	// directions park again.
	for round := range 3 {
		for i, s := range sessions {
			for _, p := range [][2]*net.TCPConn{{s.ta, s.ca}, {s.ca, s.ta}} {
				msg := []byte{byte(i), byte(round)}
				if _, err := p[0].Write(msg); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(msg))
				_ = p[1].SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(p[1], got); err != nil {
					t.Fatalf("session %d round %d: %v", i, round, err)
				}
				if string(got) != string(msg) {
					t.Fatalf("session %d round %d: got %v, want %v", i, round, got, msg)
				}
			}
		}
		waitForT(t, "every direction parked again", func() bool { return parkedDirs.Load()-parked0 == int64(parkedPer*n) })
	}
	// A direction's goroutine ends just after it parks.
	waitForT(t, fmt.Sprintf("at most %d goroutines for %d idle sessions after traffic", perSession*n+1, n), func() bool {
		return runtime.NumGoroutine()-g0 <= perSession*n+1
	})

	// Half the sessions end normally: the target half-closes first, while
	// its direction is parked, then the client.
	for _, s := range sessions[:n/2] {
		if err := s.ta.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = s.ca.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(s.ca); err != nil || len(b) != 0 {
			t.Fatalf("client read %q, %v after the target's half-close; want EOF", b, err)
		}
		if err := s.ca.CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	for range n / 2 {
		select {
		case o := <-results:
			if o.err != nil || o.res.TargetToClient != 6 || o.res.ClientToTarget != 6 || !o.res.Spliced {
				t.Errorf("normal end: %+v, %v; want 6 bytes each way, spliced, no error", o.res, o.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Pipe did not return after both half-closes")
		}
	}
	// The rest end by cancellation while parked.
	cancel()
	for range n - n/2 {
		select {
		case o := <-results:
			if !errors.Is(o.err, context.Canceled) {
				t.Errorf("Pipe error = %v, want context.Canceled", o.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Pipe did not return after cancel")
		}
	}
	if p := parkedDirs.Load() - parked0; p != 0 {
		t.Errorf("%d directions still counted as parked after every Pipe returned", p)
	}
	waitForT(t, "the parker's goroutine to end", func() bool { return !parkerRunning() })
}

// TestParkIdleTimeout: a session whose target->client direction is parked
// still ends at the idle timeout, and traffic from the target (waking the
// parked direction) counts as activity.
func TestParkIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	s := startSession(t, context.Background(), modes[0], Options{ParkIdle: true, IdleTimeout: idle})
	start := time.Now()
	for range 4 {
		time.Sleep(idle / 2)
		if _, err := s.targetApp.Write([]byte("y")); err != nil {
			t.Fatal(err)
		}
	}
	o := s.wait(t, 5*time.Second)
	if !errors.Is(o.err, ErrIdleTimeout) {
		t.Fatalf("Pipe error = %v, want ErrIdleTimeout", o.err)
	}
	if el := time.Since(start); el < 4*idle/2+idle {
		t.Errorf("ended after %v: the target's traffic did not count as activity", el)
	}
	if o.res.TargetToClient != 4 {
		t.Errorf("TargetToClient = %d, want 4", o.res.TargetToClient)
	}
}

// TestParkDelay: a direction that keeps receiving bytes more often than
// its park delay stays off the parker, on its goroutine; once its source
// has been silent for the delay, it parks.
func TestParkDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	for _, start := range []bool{false, true} {
		t.Run(fmt.Sprintf("start=%v", start), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			parked0, wakes0 := parkedDirs.Load(), parkWakes.Load()
			sessions, results := startSessions(t, ctx, ln, 1, Options{ParkIdle: true, ParkDelay: delay}, start)
			s := sessions[0]
			// Twelve exchanges, 50 ms apart: 600 ms of activity, twice
			// the delay, with no pause as long as the delay.
			begin := time.Now()
			// lastWrite is taken before the last byte is written: the
			// proxy cannot have moved it, its last activity, earlier.
			var lastWrite time.Time
			for i := range 12 {
				if i > 0 {
					time.Sleep(50 * time.Millisecond)
				}
				for _, p := range [][2]*net.TCPConn{{s.ca, s.ta}, {s.ta, s.ca}} {
					lastWrite = time.Now()
					if _, err := p[0].Write([]byte{byte(i)}); err != nil {
						t.Fatal(err)
					}
					got := make([]byte, 1)
					_ = p[1].SetReadDeadline(time.Now().Add(5 * time.Second))
					if _, err := io.ReadFull(p[1], got); err != nil || got[0] != byte(i) {
						t.Fatalf("exchange %d: got %v, %v", i, got, err)
					}
				}
			}
			late := time.Since(begin) > 11*(50*time.Millisecond)+delay/2
			if p, w := parkedDirs.Load()-parked0, parkWakes.Load()-wakes0; (p != 0 || w != 0) && !late {
				t.Errorf("during steady traffic: %d directions parked, %d parker wake-ups; want none", p, w)
			}
			parkedPer := int64(1)
			if start {
				parkedPer = 2
			}
			waitForT(t, "the directions to park after the delay", func() bool { return parkedDirs.Load()-parked0 == parkedPer })
			if el := time.Since(lastWrite); el < delay {
				t.Errorf("all parked %v after the last bytes were written, before the %v delay", el, delay)
			}
			// Parked, the session still relays, and ends normally.
			if _, err := s.ta.Write([]byte("z")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 1)
			_ = s.ca.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(s.ca, got); err != nil || got[0] != 'z' {
				t.Fatalf("after parking: got %q, %v", got, err)
			}
			if err := s.ta.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if err := s.ca.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			select {
			case o := <-results:
				if o.err != nil || o.res.ClientToTarget != 12 || o.res.TargetToClient != 13 {
					t.Errorf("end: %+v, %v; want 12 and 13 bytes, no error", o.res, o.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the session did not end after both half-closes")
			}
		})
	}
}
