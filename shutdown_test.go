package socks_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openSession starts a relayed session through the proxy at addr to an echo
// server and proves it works.
func openSession(t *testing.T, addr, echo string) net.Conn {
	t.Helper()
	d, _ := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
	c, err := d.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hi"))
	b := make([]byte, 2)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return c
}

func serveOn(t *testing.T, srv *socks.Server) (string, <-chan error) {
	t.Helper()
	l := testenv.Listen(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	return l.Addr().String(), done
}

func TestShutdownDrains(t *testing.T) {
	echo := testenv.EchoServer(t)
	srv := &socks.Server{Logger: slog.New(slog.DiscardHandler)}
	addr, done := serveOn(t, srv)
	c := openSession(t, addr, echo)

	// The session is alive, so Shutdown waits until its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a live session = %v, want DeadlineExceeded", err)
	}
	if err := <-done; !errors.Is(err, socks.ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("listener still accepts after Shutdown")
	}
	// The running session still relays during the drain.
	c.Write([]byte("more"))
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "more" {
		t.Fatalf("session during drain: %q %v", b, err)
	}
	if n := srv.Sessions(); n != 1 {
		t.Fatalf("Sessions() = %d during drain, want 1", n)
	}
	// Once the client leaves, Shutdown completes.
	c.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := srv.Shutdown(ctx2); err != nil {
		t.Fatalf("Shutdown after the session ended = %v", err)
	}
	if err := srv.ListenAndServe(); !errors.Is(err, socks.ErrServerClosed) {
		t.Fatalf("ListenAndServe after Shutdown = %v", err)
	}
}

func TestCloseEndsSessions(t *testing.T) {
	echo := testenv.EchoServer(t)
	srv := &socks.Server{Logger: slog.New(slog.DiscardHandler)}
	addr, done := serveOn(t, srv)
	conns := []net.Conn{openSession(t, addr, echo), openSession(t, addr, echo), openSession(t, addr, echo)}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, socks.ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("session %d still open after Close (read %d bytes)", i, n)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("session %d not closed by Close", i)
		}
	}
	waitFor(t, func() bool { return srv.Sessions() == 0 }, "sessions to end")
}

func TestServeConnDirect(t *testing.T) {
	echo := testenv.EchoServer(t)
	srv := &socks.Server{Logger: slog.New(slog.DiscardHandler)}
	defer srv.Close()
	l := testenv.Listen(t)
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		done <- srv.ServeConn(context.Background(), c)
	}()
	c := openSession(t, l.Addr().String(), echo)
	// ServeConn serves on the calling goroutine to the end: a session it
	// serves is never detached (Serve's may be).
	select {
	case err := <-done:
		t.Fatalf("ServeConn returned (%v) while its session was open", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeConn = %v, want nil after a normal end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn did not return after the client closed")
	}
}

// emfileListener fails its first Accepts with EMFILE, as a listener does
// when the process is out of descriptors, then accepts for real.
type emfileListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptBackoff: temporary accept errors (EMFILE) are logged and
// retried with backoff; the server keeps serving.
func TestAcceptBackoff(t *testing.T) {
	echo := testenv.EchoServer(t)
	logs := &logBuffer{}
	srv := &socks.Server{Logger: slog.New(slog.NewTextHandler(logs, nil))}
	l := &emfileListener{Listener: testenv.Listen(t)}
	l.fails.Store(3)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	openSession(t, l.Addr().String(), echo)
	if n := strings.Count(logs.String(), "accept error; retrying"); n != 3 {
		t.Errorf("%d retry log lines, want 3:\n%s", n, logs.String())
	}
	srv.Close()
	if err := <-done; !errors.Is(err, socks.ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
}

// TestServerIdleTimeout: a relayed session survives while bytes move,
// and ends IdleTimeout after the last one (with the relay detached from
// the session's goroutine, the timeout is the relay's timer).
func TestServerIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	echo := testenv.EchoServer(t)
	srv := &socks.Server{Logger: slog.New(slog.DiscardHandler), IdleTimeout: idle}
	defer srv.Close()
	addr, _ := serveOn(t, srv)
	c := openSession(t, addr, echo)
	b := make([]byte, 1)
	for i := range 5 {
		time.Sleep(idle / 2)
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, b); err != nil || b[0] != byte(i) {
			t.Fatalf("echo %d while active: %v %v", i, b, err)
		}
	}
	quietFrom := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(b); err == nil {
		t.Fatalf("read %d bytes from an idle session", n)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the idle session was not ended")
	}
	if el := time.Since(quietFrom); el < idle-50*time.Millisecond {
		t.Errorf("ended %v after the last byte, before the idle timeout %v", el, idle)
	}
	waitFor(t, func() bool { return srv.Sessions() == 0 }, "the session to be untracked")
}
