// Package testenv holds helpers for the project's tests: locating
// third-party tools (skipping on a developer machine, failing under CI),
// and small loopback servers to proxy to.
package testenv

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// tool is a failure rather than a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Tool returns the path of an executable, or skips the test (fails it
// under CI) when it is not installed.
func Tool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := name + " is not installed (Debian package " + debianPackage + "; .ci/run installs it)"
		if InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// CleanEnv returns an environment for third-party clients without any
// proxy variables, so that a client goes exactly where a test says.
func CleanEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "LANG=C"}
	return append(env, extra...)
}

// Listen returns a TCP listener on 127.0.0.1 with a free port, closed at
// the end of the test.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// EchoServer starts a TCP server on 127.0.0.1 that writes back everything
// it reads and half-closes when the client does. It returns its address;
// it stops at the end of the test.
func EchoServer(t testing.TB) string {
	t.Helper()
	return serve(t, func(c net.Conn) {
		io.Copy(c, c)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	})
}

// LineServer starts a TCP server on 127.0.0.1 that answers each line it
// reads with prefix + line.
func LineServer(t testing.TB, prefix string) string {
	t.Helper()
	return serve(t, func(c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			if _, err := io.WriteString(c, prefix+sc.Text()+"\n"); err != nil {
				return
			}
		}
	})
}

// serve runs handle for every connection accepted on a new loopback
// listener, and waits for all of them when the test ends.
func serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// ErrClosed reports whether err means a closed connection.
func ErrClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}
