package socks_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/auth"
	"github.com/virgilproxy/socks/dialer"
	"github.com/virgilproxy/socks/internal/testenv"
)

// roundTrip proves c reaches a LineServer answering "echo:".
func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "echo:ping\n" {
		t.Fatalf("through the proxy got %q, %v", line, err)
	}
}

func quietServer(t *testing.T, srv *socks.Server) string {
	srv.Logger = slog.New(slog.DiscardHandler)
	addr, _ := serveOn(t, srv)
	t.Cleanup(func() { srv.Close() })
	return addr
}

func TestDialerAgainstPeers(t *testing.T) {
	target := testenv.LineServer(t, "echo:")
	targetByName := strings.Replace(target, "127.0.0.1", "localhost", 1)
	type peer struct {
		name  string
		start func(t *testing.T) string
		d     socks.Dialer // ProxyAddr filled in
		dest  string
	}
	ours := func(authOn bool) func(t *testing.T) string {
		return func(t *testing.T) string {
			srv := &socks.Server{HTTPConnect: true}
			if authOn {
				srv.Authenticator = auth.Users{"u": "p"}
			}
			return quietServer(t, srv)
		}
	}
	dante := func(method string) func(t *testing.T) string {
		return func(t *testing.T) string { return testenv.Dante(t, method).Addr }
	}
	peers := []peer{
		{"virgil socks5h", ours(false), socks.Dialer{}, targetByName},
		{"virgil socks5 local resolve", ours(false), socks.Dialer{ResolveLocally: true}, targetByName},
		{"virgil socks5 auth", ours(true), socks.Dialer{Username: "u", Password: "p"}, targetByName},
		{"virgil socks4", ours(false), socks.Dialer{Protocol: socks.ProtocolSOCKS4}, targetByName},
		{"virgil socks4a", ours(false), socks.Dialer{Protocol: socks.ProtocolSOCKS4a}, targetByName},
		{"virgil http", ours(false), socks.Dialer{Protocol: socks.ProtocolHTTPConnect}, targetByName},
		{"virgil http auth", ours(true), socks.Dialer{Protocol: socks.ProtocolHTTPConnect, Username: "u", Password: "p"}, target},
		{"dante socks5", dante("none"), socks.Dialer{}, targetByName},
		{"dante socks4", dante("none"), socks.Dialer{Protocol: socks.ProtocolSOCKS4}, target},
		{"dante socks5 username", dante("username"), socks.Dialer{Username: testenv.DanteUser, Password: testenv.DantePassword}, target},
		{"microsocks", func(t *testing.T) string { return testenv.Microsocks(t, "", "").Addr }, socks.Dialer{}, targetByName},
		{"microsocks auth", func(t *testing.T) string { return testenv.Microsocks(t, "mu", "mp").Addr }, socks.Dialer{Username: "mu", Password: "mp"}, target},
		{"tinyproxy", func(t *testing.T) string { return testenv.Tinyproxy(t, "", "").Addr }, socks.Dialer{Protocol: socks.ProtocolHTTPConnect}, target},
		{"tinyproxy auth", func(t *testing.T) string { return testenv.Tinyproxy(t, "tu", "tp").Addr }, socks.Dialer{Protocol: socks.ProtocolHTTPConnect, Username: "tu", Password: "tp"}, target},
	}
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			d := p.d
			d.ProxyAddr = p.start(t)
			c, err := d.DialContext(context.Background(), "tcp", p.dest)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			roundTrip(t, c)
		})
	}
}

func TestDialerErrors(t *testing.T) {
	closed := testenv.Listen(t)
	closedAddr := closed.Addr().String()
	closed.Close()
	target := testenv.LineServer(t, "echo:")
	authed := quietServer(t, &socks.Server{HTTPConnect: true, Authenticator: auth.Users{"u": "p"}})
	open := quietServer(t, &socks.Server{Dialer: &net.Dialer{Resolver: testenv.NXDomainResolver(t)}})
	cases := []struct {
		name string
		d    socks.Dialer
		dest string
		want socks.ReplyCode
	}{
		{"socks5 wrong password", socks.Dialer{ProxyAddr: authed, Username: "u", Password: "x"}, target, socks.ReplyAuthFailed},
		{"socks5 no credentials", socks.Dialer{ProxyAddr: authed}, target, socks.ReplyAuthFailed},
		{"http wrong password", socks.Dialer{ProxyAddr: authed, Protocol: socks.ProtocolHTTPConnect, Username: "u", Password: "x"}, target, socks.ReplyAuthFailed},
		{"socks4 refused", socks.Dialer{ProxyAddr: authed, Protocol: socks.ProtocolSOCKS4}, target, socks.ReplyGeneralFailure},
		{"destination refused", socks.Dialer{ProxyAddr: open}, closedAddr, socks.ReplyConnectionRefused},
		{"name does not resolve", socks.Dialer{ProxyAddr: open}, "nx.invalid:80", socks.ReplyHostUnreachable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.d.Dial("tcp", tc.dest)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded, want an error")
			}
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "proxyconnect" {
				t.Errorf("error %v (%T) is not a proxyconnect *net.OpError", err, err)
			}
			var re *socks.ReplyError
			if !errors.As(err, &re) || re.Code != tc.want {
				t.Fatalf("error %v: reply code %v, want %v", err, re, tc.want)
			}
		})
	}
	t.Run("proxy down", func(t *testing.T) {
		_, err := (&socks.Dialer{ProxyAddr: closedAddr}).Dial("tcp", target)
		var re *socks.ReplyError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("err = %v, want a connect error that is not a reply", err)
		}
	})
}

// TestDialerContextCancel: a proxy that accepts and never answers; the
// cancelled dial returns promptly and leaves nothing behind (goleak in
// TestMain).
func TestDialerContextCancel(t *testing.T) {
	l := testenv.Listen(t)
	held := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	defer func() {
		l.Close()
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	for _, proto := range []socks.Protocol{socks.ProtocolSOCKS5, socks.ProtocolSOCKS4a, socks.ProtocolHTTPConnect} {
		ctx, cancel := context.WithCancel(context.Background())
		d := &socks.Dialer{ProxyAddr: l.Addr().String(), Protocol: proto}
		errc := make(chan error, 1)
		go func() {
			_, err := d.DialContext(ctx, "tcp", "example.invalid:80")
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond)
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%v: err = %v, want context.Canceled", proto, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v: cancelled dial did not return", proto)
		}
	}
}

// TestDialerKeepsEarlyBytes: bytes an HTTP proxy sends right after its
// 200 response, in the same segment, reach the caller.
func TestDialerKeepsEarlyBytes(t *testing.T) {
	l := testenv.Listen(t)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n220 banner from the target\r\n")
	}()
	d := &socks.Dialer{ProxyAddr: l.Addr().String(), Protocol: socks.ProtocolHTTPConnect}
	c, err := d.Dial("tcp", "mail.example:25")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	if string(got) != "220 banner from the target\r\n" {
		t.Fatalf("read %q after CONNECT", got)
	}
}

// TestHTTPTransportTLSThroughDialer: https end to end through the tunnel.
func TestHTTPTransportTLSThroughDialer(t *testing.T) {
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secret over tls")
	}))
	defer hs.Close()
	for _, proto := range []socks.Protocol{socks.ProtocolSOCKS5, socks.ProtocolHTTPConnect} {
		addr := quietServer(t, &socks.Server{HTTPConnect: true})
		d := &socks.Dialer{ProxyAddr: addr, Protocol: proto}
		tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: hs.Client().Transport.(*http.Transport).TLSClientConfig.Clone()}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := client.Get(hs.URL)
		if err != nil {
			t.Fatalf("%v: %v", proto, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if string(b) != "secret over tls" || resp.TLS == nil {
			t.Fatalf("%v: body %q, tls %v", proto, b, resp.TLS != nil)
		}
	}
}

// TestDialerHTTPSProxy: HTTP CONNECT over TLS to the proxy itself.
func TestDialerHTTPSProxy(t *testing.T) {
	target := testenv.LineServer(t, "echo:")
	hs := httptest.NewUnstartedServer(nil) // only for its certificate
	hs.StartTLS()
	cert := hs.TLS.Certificates[0]
	pool := hs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	hs.Close()

	srv := &socks.Server{HTTPConnect: true, Logger: slog.New(slog.DiscardHandler)}
	l := tls.NewListener(testenv.Listen(t), &tls.Config{Certificates: []tls.Certificate{cert}})
	go srv.Serve(l)
	defer srv.Close()
	d := &socks.Dialer{ProxyAddr: l.Addr().String(), Protocol: socks.ProtocolHTTPConnect, TLSConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"}}
	c, err := d.Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*tls.Conn); !ok {
		t.Errorf("conn is %T, want *tls.Conn to the proxy", c)
	}
	roundTrip(t, c)
}

// TestServerChainsThroughDante: our server's outbound connections go
// through Dante; names travel upstream unresolved.
func TestServerChainsThroughDante(t *testing.T) {
	dante := testenv.Dante(t, "none")
	target := testenv.LineServer(t, "echo:")
	front := quietServer(t, &socks.Server{Dialer: &socks.Dialer{ProxyAddr: dante.Addr}})
	c, err := (&socks.Dialer{ProxyAddr: front}).Dial("tcp", strings.Replace(target, "127.0.0.1", "localhost", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)
	waitFor(t, func() bool { return strings.Contains(dante.Output.String(), "tcp/connect") }, "Dante logging the chained connect")
}

// TestServerChainPassesNamesUnresolved: unlike Dante, a chaining server
// hands the client's host name to the upstream proxy as a name.
func TestServerChainPassesNamesUnresolved(t *testing.T) {
	target := testenv.LineServer(t, "echo:")
	upstream := startServer(t, &socks.Server{})
	front := quietServer(t, &socks.Server{Dialer: &socks.Dialer{ProxyAddr: upstream.addr}})
	c, err := (&socks.Dialer{ProxyAddr: front, Protocol: socks.ProtocolSOCKS4a}).Dial("tcp", strings.Replace(target, "127.0.0.1", "localhost", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)
	reqs := upstream.rec.all()
	if len(reqs) != 1 || reqs[0].Dest.Name != "localhost" || reqs[0].Protocol != socks.ProtocolSOCKS5 {
		t.Fatalf("upstream saw %+v, want one SOCKS5 request for the name localhost", reqs)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func asReply(err error, re **socks.ReplyError) bool { return errors.As(err, re) }

// TestChainThroughDante: a connection through three proxies, ours, then
// Dante, then ours, each seeing the next hop as its destination.
func TestChainThroughDante(t *testing.T) {
	dante := testenv.Dante(t, "none")
	target := testenv.LineServer(t, "echo:")
	first := startServer(t, &socks.Server{})
	third := startServer(t, &socks.Server{})
	d, err := dialer.Chain(
		&socks.Dialer{ProxyAddr: first.addr},
		&socks.Dialer{ProxyAddr: dante.Addr},
		&socks.Dialer{ProxyAddr: third.addr, Protocol: socks.ProtocolSOCKS4a},
	)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)
	if reqs := first.rec.all(); len(reqs) != 1 || reqs[0].Dest.String() != dante.Addr {
		t.Errorf("first hop saw %+v, want one request to Dante at %s", reqs, dante.Addr)
	}
	if reqs := third.rec.all(); len(reqs) != 1 || reqs[0].Dest.String() != target || reqs[0].Protocol != socks.ProtocolSOCKS4 {
		t.Errorf("third hop saw %+v, want one SOCKS4 request to %s", reqs, target)
	}
	waitFor(t, func() bool {
		return strings.Contains(dante.Output.String(), third.addr[strings.LastIndexByte(third.addr, ':')+1:])
	}, "Dante logging the connect to the third hop")
}
