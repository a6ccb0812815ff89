package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/auth"
	"github.com/virgilproxy/socks/internal/busypoll"
	"github.com/virgilproxy/socks/internal/testenv"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// listeningLine matches the daemon's JSON log line for a listener and
// captures its address.
var listeningLine = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// TestDaemon runs the daemon with a users file and HTTP CONNECT, uses it
// with the right and the wrong password, and stops it with SIGTERM.
func TestDaemon(t *testing.T) {
	hash, err := auth.HashPassword("pw", 4)
	if err != nil {
		t.Fatal(err)
	}
	users := t.TempDir() + "/users"
	os.WriteFile(users, []byte("alice:"+hash+"\n"), 0o600)
	logs := &syncBuf{}
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"-listen", "127.0.0.1:0", "-users", users, "-http", "-log-format", "json", "-udp-busy-poll", "200us", "-busy-poll", "200us"}, logs)
	}()

	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if m := listeningLine.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("daemon did not start:\n%s", logs.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	target := testenv.LineServer(t, "echo:")
	for _, proto := range []socks.Protocol{socks.ProtocolSOCKS5, socks.ProtocolHTTPConnect} {
		c, err := (&socks.Dialer{ProxyAddr: addr, Protocol: proto, Username: "alice", Password: "pw"}).Dial("tcp", target)
		if err != nil {
			t.Fatalf("%v: %v", proto, err)
		}
		c.Write([]byte("x\n"))
		b := make([]byte, 7)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(b); err != nil || !strings.HasPrefix(string(b), "echo:x") {
			t.Fatalf("%v: read %q %v", proto, b, err)
		}
		c.Close()
	}
	udpThroughBusyPoll(t, addr)
	if !busypoll.Enabled() {
		t.Error("busy polling is off: -busy-poll did not reach the server")
	}
	if _, err := (&socks.Dialer{ProxyAddr: addr, Username: "alice", Password: "nope"}).Dial("tcp", target); err == nil {
		t.Fatal("wrong password accepted")
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), `"msg":"authentication failed"`); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no authentication failure line:\n%s", logs.String())
		}
	}
	if strings.Contains(logs.String(), "nope") {
		t.Fatalf("the log holds the password:\n%s", logs.String())
	}

	// SIGHUP reloads the users file: the new password works, the old one not.
	hash2, err := auth.HashPassword("pw2", 4)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(users, []byte("alice:"+hash2+"\n"), 0o600)
	signalSelf(t, syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), `"msg":"users reloaded"`); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload after SIGHUP:\n%s", logs.String())
		}
	}
	if c, err := (&socks.Dialer{ProxyAddr: addr, Username: "alice", Password: "pw2"}).Dial("tcp", target); err != nil {
		t.Fatalf("new password after SIGHUP: %v", err)
	} else {
		c.Close()
	}
	if _, err := (&socks.Dialer{ProxyAddr: addr, Username: "alice", Password: "pw"}).Dial("tcp", target); err == nil {
		t.Fatal("old password still accepted after SIGHUP")
	}

	signalSelf(t, syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
	if !strings.Contains(logs.String(), `"msg":"shutting down"`) {
		t.Errorf("no shutdown line:\n%s", logs.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-log-format", "xml"}, {"-users", "/nonexistent/users"}, {"extra"}} {
		if err := run(args, &syncBuf{}); err == nil {
			t.Errorf("run(%q) succeeded, want an error", args)
		}
	}
}

// udpThroughBusyPoll does a UDP round trip through the daemon and checks
// that -udp-busy-poll reached the association: its goroutine is in the
// relay's busy-poll loop while the association is open.
func udpThroughBusyPoll(t *testing.T, addr string) {
	t.Helper()
	echo := testenv.UDPEchoServer(t, "127.0.0.1")
	pc, err := (&socks.Dialer{ProxyAddr: addr, Username: "alice", Password: "pw"}).ListenPacket(context.Background(), "udp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(5 * time.Second))
	testenv.EchoDatagram(t, pc, echo, []byte("ping"))
	stacks := make([]byte, 1<<20)
	stacks = stacks[:runtime.Stack(stacks, true)]
	if !strings.Contains(string(stacks), "relay.(*udpAssoc).pollLoop") {
		t.Error("-udp-busy-poll: no association goroutine in the busy-poll loop")
	}
}
