package socks_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/auth"
	"github.com/virgilproxy/socks/internal/testenv"
)

// logBuffer is a concurrency-safe log sink for asserting on log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// recorder is request middleware that records every request it sees.
type recorder struct {
	mu   sync.Mutex
	reqs []socks.Request
}

func (rec *recorder) middleware(next socks.Handler) socks.Handler {
	return socks.HandlerFunc(func(ctx context.Context, w socks.ReplyWriter, r *socks.Request) error {
		rec.mu.Lock()
		cp := *r
		cp.Traffic = nil
		rec.reqs = append(rec.reqs, cp)
		rec.mu.Unlock()
		return next.ServeSOCKS(ctx, w, r)
	})
}

func (rec *recorder) all() []socks.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]socks.Request(nil), rec.reqs...)
}

type testServer struct {
	*socks.Server
	addr string
	log  *logBuffer
	rec  *recorder
}

// startServer serves srv on a loopback listener until the test ends.
func startServer(t *testing.T, srv *socks.Server) *testServer {
	t.Helper()
	ts := &testServer{Server: srv, log: &logBuffer{}, rec: &recorder{}}
	if srv.Logger == nil {
		srv.Logger = slog.New(slog.NewTextHandler(ts.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv.Middleware = append([]socks.Middleware{ts.rec.middleware}, srv.Middleware...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, socks.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", ts.log.String())
		}
	})
	return ts
}

const body = "hello through the proxy\n"

// httpTarget starts a local HTTP server that answers every request with body.
func httpTarget(t *testing.T) *httptest.Server {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	t.Cleanup(hs.Close)
	return hs
}

func TestCurl(t *testing.T) {
	curl := testenv.Tool(t, "curl", "curl")
	target := httpTarget(t)
	port := target.Listener.Addr().(*net.TCPAddr).Port
	byIP := fmt.Sprintf("http://127.0.0.1:%d/", port)
	byName := fmt.Sprintf("http://localhost:%d/", port)

	users := auth.Users{"alice": "s3cret:pw"}
	cases := []struct {
		name      string
		authOn    bool
		args      []string // proxy flags; %s is the proxy address
		url       string
		protocol  socks.Protocol
		wantDest  socks.Addr
		wantUser  string
		wantError bool
	}{
		{name: "socks4", args: []string{"--socks4", "%s"}, url: byIP, protocol: socks.ProtocolSOCKS4, wantDest: socks.Addr{IP: mustIP("127.0.0.1"), Port: uint16(port)}},
		{name: "socks4a", args: []string{"--socks4a", "%s"}, url: byName, protocol: socks.ProtocolSOCKS4a, wantDest: socks.Addr{Name: "localhost", Port: uint16(port)}},
		{name: "socks5", args: []string{"--socks5", "%s"}, url: byIP, protocol: socks.ProtocolSOCKS5, wantDest: socks.Addr{IP: mustIP("127.0.0.1"), Port: uint16(port)}},
		{name: "socks5-hostname", args: []string{"--socks5-hostname", "%s"}, url: byName, protocol: socks.ProtocolSOCKS5, wantDest: socks.Addr{Name: "localhost", Port: uint16(port)}},
		{name: "socks5 auth", authOn: true, args: []string{"--socks5-hostname", "%s", "--proxy-user", "alice:s3cret:pw"}, url: byName, protocol: socks.ProtocolSOCKS5, wantDest: socks.Addr{Name: "localhost", Port: uint16(port)}, wantUser: "alice"},
		{name: "socks5 wrong password", authOn: true, args: []string{"--socks5-hostname", "%s", "--proxy-user", "alice:wrong"}, url: byName, wantError: true},
		{name: "socks4 refused when auth is on", authOn: true, args: []string{"--socks4", "%s"}, url: byIP, wantError: true},
		{name: "http connect", args: []string{"-p", "-x", "http://%s"}, url: byName, protocol: socks.ProtocolHTTPConnect, wantDest: socks.Addr{Name: "localhost", Port: uint16(port)}},
		{name: "http connect auth", authOn: true, args: []string{"-p", "-x", "http://%s", "--proxy-user", "alice:s3cret:pw"}, url: byIP, protocol: socks.ProtocolHTTPConnect, wantDest: socks.Addr{IP: mustIP("127.0.0.1"), Port: uint16(port)}, wantUser: "alice"},
		{name: "http connect no credentials", authOn: true, args: []string{"-p", "-x", "http://%s"}, url: byIP, wantError: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := &socks.Server{HTTPConnect: true}
			if tc.authOn {
				srv.Authenticator = users
			}
			ts := startServer(t, srv)
			var args []string
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "%s", ts.addr))
			}
			args = append(args, "-sS", "--fail", "--max-time", "10", tc.url)
			cmd := exec.Command(curl, args...)
			cmd.Env = testenv.CleanEnv()
			out, err := cmd.CombinedOutput()
			if tc.wantError {
				if err == nil {
					t.Fatalf("curl %v succeeded, want failure; output %q", args, out)
				}
				if n := len(ts.rec.all()); n != 0 {
					t.Errorf("%d requests reached the handler chain, want 0", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("curl %v: %v\n%s", args, err, out)
			}
			if string(out) != body {
				t.Errorf("body = %q, want %q", out, body)
			}
			reqs := ts.rec.all()
			if len(reqs) != 1 {
				t.Fatalf("handler saw %d requests, want 1", len(reqs))
			}
			got := reqs[0]
			if got.Protocol != tc.protocol || got.Command != socks.CommandConnect {
				t.Errorf("protocol, command = %v, %v; want %v, connect", got.Protocol, got.Command, tc.protocol)
			}
			if diff := cmp.Diff(tc.wantDest, got.Dest, cmp.Comparer(func(a, b socks.Addr) bool { return a == b })); diff != "" {
				t.Errorf("dest (-want +got):\n%s", diff)
			}
			if got.Identity == nil || got.Identity.User != tc.wantUser {
				t.Errorf("identity = %v, want user %q", got.Identity, tc.wantUser)
			}
		})
	}
}

func mustIP(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestNetHTTPThroughSOCKS5(t *testing.T) {
	target := httpTarget(t)
	ts := startServer(t, &socks.Server{Authenticator: auth.Users{"bob": "pw"}})
	proxyURL := &url.URL{Scheme: "socks5", Host: ts.addr, User: url.UserPassword("bob", "pw")}
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(target.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != body {
		t.Fatalf("body %q, %v; want %q", got, err, body)
	}
	if reqs := ts.rec.all(); len(reqs) != 1 || reqs[0].Identity.User != "bob" {
		t.Errorf("requests = %+v, want one by bob", reqs)
	}
}

func TestXNetProxySOCKS5(t *testing.T) {
	echo := testenv.EchoServer(t)
	ts := startServer(t, &socks.Server{})
	d, err := proxy.SOCKS5("tcp", ts.addr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.(proxy.ContextDialer).DialContext(context.Background(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := []byte("ping over socks5")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, %v", got, err)
	}
}

// dialRaw connects to the server and returns the conn with a deadline.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange writes in, then reads until the server closes, and returns what it read.
func exchange(t *testing.T, addr string, in []byte) []byte {
	t.Helper()
	c := dialRaw(t, addr)
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading reply: %v", err)
	}
	return out
}

// checkStillServes proves the server still serves a good SOCKS5 client.
func checkStillServes(t *testing.T, addr string) {
	t.Helper()
	echo := testenv.EchoServer(t)
	d, _ := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
	c, err := d.Dial("tcp", echo)
	if err != nil {
		t.Fatalf("server no longer serves: %v", err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil || b[0] != 'x' {
		t.Fatalf("echo after bad input: %q %v", b, err)
	}
}

func ipv4Req(cmd byte, port int) []byte {
	return []byte{5, cmd, 0, 1, 127, 0, 0, 1, byte(port >> 8), byte(port)}
}

func TestBadInput(t *testing.T) {
	ts := startServer(t, &socks.Server{HTTPConnect: true, HandshakeTimeout: 5 * time.Second})
	longName := strings.Repeat("a", 300)
	cases := []struct {
		name    string
		in      []byte
		want    []byte // exact reply bytes expected before close
		wantLog string
	}{
		{"wrong version byte", []byte{0x06, 1, 0}, nil, "unknown protocol"},
		{"zero methods", []byte{5, 0}, []byte{5, 0xFF}, "handshake failed"},
		{"no acceptable method", []byte{5, 1, 0x02}, []byte{5, 0xFF}, "no acceptable"},
		{"unknown command", append([]byte{5, 1, 0}, ipv4Req(9, 80)...), []byte{5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0}, "handshake failed"},
		{"unknown address type", []byte{5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4, 0, 80}, []byte{5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0}, "handshake failed"},
		{"domain length 0", []byte{5, 1, 0, 5, 1, 0, 3, 0, 0, 80}, []byte{5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0}, "handshake failed"},
		{"socks4 userid over the cap", append(append([]byte{4, 1, 0, 80, 127, 0, 0, 1}, longName...), 0), []byte{0, 91, 0, 0, 0, 0, 0, 0}, "handshake failed"},
		{"socks4a hostname over the cap", append(append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, longName...), 0), []byte{0, 91, 0, 0, 0, 0, 0, 0}, "handshake failed"},
		{"http malformed request line", []byte("CONNECT\r\n\r\n"), []byte("HTTP/1.1 400 "), "handshake failed"},
		{"http other method", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("HTTP/1.1 405 "), "handshake failed"},
		{"http header flood", append([]byte("CONNECT a:1 HTTP/1.1\r\n"), bytes.Repeat([]byte("X-Flood: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n"), 3000)...), []byte("HTTP/1.1 431 "), "handshake failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := exchange(t, ts.addr, tc.in)
			if tc.want == nil {
				if len(out) != 0 {
					t.Errorf("reply %x, want none", out)
				}
			} else if !bytes.HasPrefix(out, tc.want) {
				t.Errorf("reply %q, want prefix %q", out, tc.want)
			}
			waitFor(t, func() bool { return strings.Contains(ts.log.String(), tc.wantLog) }, "log line "+strconv.Quote(tc.wantLog))
			checkStillServes(t, ts.addr)
		})
	}
	if n, good := len(ts.rec.all()), countGood(ts); n != good || good != len(cases) {
		t.Errorf("handler chain saw %d requests (%d from good clients), want exactly the %d good ones", n, good, len(cases))
	}
}

// countGood counts the requests from checkStillServes, which all reached the chain.
func countGood(ts *testServer) int {
	n := 0
	for _, r := range ts.rec.all() {
		if r.Protocol == socks.ProtocolSOCKS5 && r.Command == socks.CommandConnect {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHandshakeOneByteAtATime(t *testing.T) {
	echo := testenv.EchoServer(t)
	ts := startServer(t, &socks.Server{Authenticator: auth.Users{"u": "p"}})
	_, portStr, _ := net.SplitHostPort(echo)
	port, _ := strconv.Atoi(portStr)
	c := dialRaw(t, ts.addr)
	steps := []struct {
		send []byte
		want []byte
	}{
		{[]byte{5, 2, 0, 2}, []byte{5, 2}},
		{[]byte{1, 1, 'u', 1, 'p'}, []byte{1, 0}},
		{append([]byte{5, 1, 0, 3, 9}, append([]byte("localhost"), byte(port>>8), byte(port))...), nil},
	}
	for _, st := range steps {
		for _, b := range st.send {
			if _, err := c.Write([]byte{b}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		if st.want != nil {
			got := make([]byte, len(st.want))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, st.want) {
				t.Fatalf("got %x, %v; want %x", got, err, st.want)
			}
		}
	}
	reply := make([]byte, 10)
	if _, err := io.ReadFull(c, reply); err != nil || reply[1] != 0 {
		t.Fatalf("reply %x, %v", reply, err)
	}
	c.Write([]byte("abc"))
	got := make([]byte, 3)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "abc" {
		t.Fatalf("echo %q %v", got, err)
	}
}

func TestStalledHandshakeClosed(t *testing.T) {
	ts := startServer(t, &socks.Server{HandshakeTimeout: 200 * time.Millisecond})
	c := dialRaw(t, ts.addr)
	c.Write([]byte{5, 1}) // greeting cut short
	start := time.Now()
	_, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: %v", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("stalled handshake held for %v", waited)
	}
	waitFor(t, func() bool { return strings.Contains(ts.log.String(), "i/o timeout") }, "timeout log line")
	checkStillServes(t, ts.addr)
}

// TestHalfClose: the client shuts its write side and still receives the
// target's whole response.
func TestHalfClose(t *testing.T) {
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	want := sha256.Sum256(payload)
	// The target reads until EOF, then sends its response and closes.
	l := testenv.Listen(t)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, _ := io.ReadAll(c)
		if string(req) != "request" {
			return
		}
		c.Write(payload)
	}()
	ts := startServer(t, &socks.Server{})
	d, _ := proxy.SOCKS5("tcp", ts.addr, nil, proxy.Direct)
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("request"))
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != want {
		t.Fatalf("response of %d bytes differs from the %d sent", len(got), len(payload))
	}
	waitFor(t, func() bool { return strings.Contains(ts.log.String(), "bytes_to_client=1048576") }, "disconnect line with byte counts")
	if !strings.Contains(ts.log.String(), "bytes_from_client=7") {
		t.Errorf("disconnect line lacks bytes_from_client=7:\n%s", ts.log.String())
	}
}

func TestEarlyDataNotLost(t *testing.T) {
	echo := testenv.EchoServer(t)
	ts := startServer(t, &socks.Server{HTTPConnect: true})
	c := dialRaw(t, ts.addr)
	// Request and first tunnel bytes in one write.
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nearly bytes", echo, echo)
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("status %q, %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	got := make([]byte, len("early bytes"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "early bytes" {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// TestConnReadsEarlyBytesOnce: every ReplyWriter.Conn call returns the
// same stream, so bytes the handshake read ahead are delivered once even
// when two parts of a handler read from it.
func TestConnReadsEarlyBytesOnce(t *testing.T) {
	got := make(chan string, 1)
	h := socks.HandlerFunc(func(ctx context.Context, w socks.ReplyWriter, r *socks.Request) error {
		if err := w.Reply(socks.ReplySucceeded, nil); err != nil {
			return err
		}
		a := make([]byte, 5)
		io.ReadFull(w.Conn(), a)
		b := make([]byte, 6)
		io.ReadFull(w.Conn(), b)
		got <- string(a) + "|" + string(b)
		return nil
	})
	ts := startServer(t, &socks.Server{HTTPConnect: true, Handler: h})
	c := dialRaw(t, ts.addr)
	io.WriteString(c, "CONNECT a.example:1 HTTP/1.1\r\n\r\nearly bytes")
	select {
	case s := <-got:
		if s != "early| bytes" {
			t.Fatalf("handler read %q, want %q", s, "early| bytes")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not read the early bytes")
	}
}

func TestConnectReplyCodes(t *testing.T) {
	// A port with nothing listening: refused (5).
	l := testenv.Listen(t)
	closedAddr := l.Addr().(*net.TCPAddr)
	l.Close()
	ts := startServer(t, &socks.Server{Dialer: &net.Dialer{Resolver: testenv.NXDomainResolver(t)}})
	cases := []struct {
		name string
		req  []byte
		want byte
	}{
		{"refused", []byte{5, 1, 0, 1, 127, 0, 0, 1, byte(closedAddr.Port >> 8), byte(closedAddr.Port)}, 5},
		{"name does not resolve", append(append([]byte{5, 1, 0, 3, byte(len("nx.invalid"))}, "nx.invalid"...), 0, 80), 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := exchange(t, ts.addr, append([]byte{5, 1, 0}, tc.req...))
			if len(out) < 4 || out[2] != 5 || out[3] != tc.want {
				t.Fatalf("reply %x, want REP %d", out, tc.want)
			}
		})
	}
}
