package dialer_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/auth"
	"github.com/virgilproxy/socks/dialer"
	"github.com/virgilproxy/socks/internal/testenv"
)

func mustAddrPattern(t *testing.T, s string) dialer.AddrPattern {
	t.Helper()
	a, err := dialer.ParseAddrPattern(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func via(addr string) []*socks.Dialer {
	return []*socks.Dialer{{Protocol: socks.ProtocolSOCKS5, ProxyAddr: addr}}
}

func TestTableFirstMatch(t *testing.T) {
	echo := testenv.EchoServer(t)
	j := &journal{}
	a := startProxy(t, "a", j, nil)
	b := startProxy(t, "b", j, nil)
	_, echoPort, _ := net.SplitHostPort(echo)
	port, err := dialer.ParsePortPattern("=", echoPort)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := dialer.ParsePortPattern("", "1-2")
	tab := &dialer.Table{Routes: []dialer.Route{
		{To: mustAddrPattern(t, "10.0.0.0/8"), Via: via(b.addr)},                 // wrong net
		{To: mustAddrPattern(t, "127.0.0.0/8"), ToPort: other, Via: via(b.addr)}, // wrong port
		{To: mustAddrPattern(t, ".example.test"), Via: via(b.addr)},              // a domain never matches an IP without a resolver
		{To: mustAddrPattern(t, "127.0.0.0/8"), ToPort: port, Via: via(a.addr)},
		{Via: via(b.addr)}, // everything else
	}}
	c, err := tab.DialContext(context.Background(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c)
	if diff := cmp.Diff([]string{"a socks_v5 " + echo}, j.all()); diff != "" {
		t.Errorf("proxies saw (-want +got):\n%s", diff)
	}
}

func TestTableNoRoute(t *testing.T) {
	tab := &dialer.Table{Routes: []dialer.Route{{To: mustAddrPattern(t, "10.0.0.0/8"), Direct: true}}}
	_, err := tab.Dial("tcp", "192.0.2.1:80")
	if !errors.Is(err, dialer.ErrNoRoute) || err.Error() != "dialer: no route to 192.0.2.1:80" {
		t.Errorf("error %v, want no route to 192.0.2.1:80", err)
	}
	if _, err := (&dialer.Table{}).Dial("udp", "192.0.2.1:80"); err == nil {
		t.Error("udp dial succeeded")
	}
}

func TestTableDirect(t *testing.T) {
	echo := testenv.EchoServer(t)
	cd := &countingDialer{}
	tab := &dialer.Table{Direct: cd, Routes: []dialer.Route{{To: mustAddrPattern(t, "127.0.0.1/32"), Direct: true}}}
	c, err := tab.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c)
	if n := cd.n.Load(); n != 1 {
		t.Errorf("Direct dialer used %d times, want 1", n)
	}
	// A direct route's failure is the destination's answer: returned, not
	// counted.
	if _, err := tab.Dial("tcp", deadAddr(t)); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if tab.Bad(0) {
		t.Error("a direct route was marked bad")
	}
}

// A dead proxy fails over to the next route, is marked bad and skipped,
// and is tried again once the mark expires.
func TestTableFailoverAndExpiry(t *testing.T) {
	echo := testenv.EchoServer(t)
	j := &journal{}
	live := startProxy(t, "live", j, nil)
	dead := &countingDialer{}
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	tab := &dialer.Table{
		Now:       clock.Now,
		BadExpire: time.Minute,
		Routes: []dialer.Route{
			{Via: []*socks.Dialer{{ProxyAddr: deadAddr(t), Forward: dead}}},
			{Via: via(live.addr)},
		},
	}
	dial := func() {
		t.Helper()
		c, err := tab.Dial("tcp", echo)
		if err != nil {
			t.Fatal(err)
		}
		echoRoundTrip(t, c)
	}
	dial()
	if n := dead.n.Load(); n != 1 || !tab.Bad(0) {
		t.Fatalf("after one failure: %d tries of the dead proxy, bad=%v; want 1, true", n, tab.Bad(0))
	}
	dial() // skips the bad route
	if n := dead.n.Load(); n != 1 {
		t.Errorf("the bad route was tried again before expiry (%d tries)", n)
	}
	clock.Advance(59 * time.Second)
	dial()
	if n := dead.n.Load(); n != 1 {
		t.Errorf("the bad route was tried before its mark expired (%d tries)", n)
	}
	clock.Advance(time.Second)
	if tab.Bad(0) {
		t.Error("the mark did not expire after BadExpire")
	}
	dial()
	if n := dead.n.Load(); n != 2 {
		t.Errorf("after expiry the route was not tried again (%d tries)", n)
	}
	if got := len(j.all()); got != 4 {
		t.Errorf("the live proxy carried %d connections, want 4", got)
	}
}

func TestTableMaxFail(t *testing.T) {
	echo := testenv.EchoServer(t)
	j := &journal{}
	live := startProxy(t, "live", j, nil)
	dead := &countingDialer{}
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	tab := &dialer.Table{
		Now:     clock.Now,
		MaxFail: 3,
		Routes: []dialer.Route{
			{Via: []*socks.Dialer{{ProxyAddr: deadAddr(t), Forward: dead}}},
			{Via: via(live.addr)},
		},
	}
	var bad []bool
	for range 4 {
		c, err := tab.Dial("tcp", echo)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		bad = append(bad, tab.Bad(0))
	}
	if diff := cmp.Diff([]bool{false, false, true, true}, bad); diff != "" {
		t.Errorf("bad after each dial (-want +got):\n%s", diff)
	}
	if n := dead.n.Load(); n != 3 {
		t.Errorf("dead proxy tried %d times, want 3", n)
	}
	clock.Advance(dialer.DefaultBadExpire)
	if tab.Bad(0) {
		t.Error("the mark did not expire after DefaultBadExpire")
	}
}

// When every matching route is bad, they are tried anyway.
func TestTableAllBadTriedAnyway(t *testing.T) {
	echo := testenv.EchoServer(t)
	dead := &countingDialer{}
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	tab := &dialer.Table{Now: clock.Now, Routes: []dialer.Route{
		{Via: []*socks.Dialer{{ProxyAddr: deadAddr(t), Forward: dead}}},
	}}
	for i := range 2 {
		_, err := tab.Dial("tcp", echo)
		var re *socks.ReplyError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("dial %d through a dead proxy: %v", i, err)
		}
	}
	if n := dead.n.Load(); n != 2 || !tab.Bad(0) {
		t.Errorf("dead proxy tried %d times (want 2), bad=%v", n, tab.Bad(0))
	}
}

// Within a route, the Via dialers are tried in order: a SOCKS5 attempt at
// a gateway that does not answer SOCKS5 gives way to SOCKS4.
func TestTableViaOrder(t *testing.T) {
	echo := testenv.EchoServer(t)
	j := &journal{}
	v4only := startProxy(t, "v4", j, nil)
	// A front that closes SOCKS5 greetings and forwards everything else.
	front := testenv.Listen(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := front.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1)
			if _, err := c.Read(buf); err != nil || buf[0] == 5 {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", v4only.addr)
			if err != nil {
				c.Close()
				continue
			}
			up.Write(buf)
			go func() { defer up.Close(); defer c.Close(); pipe(c, up) }()
		}
	}()
	t.Cleanup(func() { front.Close(); <-done })
	tab := &dialer.Table{Routes: []dialer.Route{{Via: []*socks.Dialer{
		{Protocol: socks.ProtocolSOCKS5, ProxyAddr: front.Addr().String()},
		{Protocol: socks.ProtocolSOCKS4, ProxyAddr: front.Addr().String()},
	}}}}
	c, err := tab.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c)
	if diff := cmp.Diff([]string{"v4 socks_v4 " + echo}, j.all()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if tab.Bad(0) {
		t.Error("the route was marked bad although a Via dialer succeeded")
	}
}

// pipe copies both ways until either side ends.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	a.Close()
	b.Close()
	<-done
}

// A refusal by the proxy is returned as is: no failover, no bad mark.
func TestTableRefusalIsNotFailure(t *testing.T) {
	echo := testenv.EchoServer(t)
	j := &journal{}
	refuser := startProxy(t, "refuser", j, func(s *socks.Server) {
		s.Middleware = append(s.Middleware, func(socks.Handler) socks.Handler {
			return socks.HandlerFunc(func(context.Context, socks.ReplyWriter, *socks.Request) error {
				return &socks.ReplyError{Code: socks.ReplyNotAllowed}
			})
		})
	})
	other := startProxy(t, "other", j, nil)
	tab := &dialer.Table{Routes: []dialer.Route{{Via: via(refuser.addr)}, {Via: via(other.addr)}}}
	for range 2 {
		_, err := tab.Dial("tcp", echo)
		var re *socks.ReplyError
		if !errors.As(err, &re) || re.Code != socks.ReplyNotAllowed {
			t.Fatalf("error %v, want the proxy's ReplyNotAllowed", err)
		}
	}
	if tab.Bad(0) {
		t.Error("a refusal marked the route bad")
	}
	want := []string{"refuser socks_v5 " + echo, "refuser socks_v5 " + echo}
	if diff := cmp.Diff(want, j.all()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A socks.Server whose Dialer is a Table sends alice's requests via proxy
// A and bob's via proxy B.
func TestTableRoutesByUser(t *testing.T) {
	echo := testenv.EchoServer(t)
	j := &journal{}
	a := startProxy(t, "A", j, nil)
	b := startProxy(t, "B", j, nil)
	tab := &dialer.Table{Routes: []dialer.Route{
		{Users: []string{"alice"}, Via: via(a.addr)},
		{Users: []string{"bob", "carol"}, Via: via(b.addr)},
	}}
	front := startProxy(t, "front", j, func(s *socks.Server) {
		s.Authenticator = auth.Users{"alice": "pw-a", "bob": "pw-b", "dave": "pw-d"}
		s.Dialer = tab
	})
	for _, user := range []string{"alice", "bob", "alice"} {
		d := &socks.Dialer{ProxyAddr: front.addr, Username: user, Password: "pw-" + user[:1]}
		c, err := d.Dial("tcp", echo)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		echoRoundTrip(t, c)
	}
	// dave matches no route: the front server refuses.
	d := &socks.Dialer{ProxyAddr: front.addr, Username: "dave", Password: "pw-d"}
	if _, err := d.Dial("tcp", echo); err == nil {
		t.Error("dave's request found a route")
	}
	want := []string{
		"front socks_v5 " + echo + " user=alice", "A socks_v5 " + echo,
		"front socks_v5 " + echo + " user=bob", "B socks_v5 " + echo,
		"front socks_v5 " + echo + " user=alice", "A socks_v5 " + echo,
		"front socks_v5 " + echo + " user=dave",
	}
	if diff := cmp.Diff(want, j.all()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Without a request in the context, a user route never matches.
	if _, err := tab.Dial("tcp", echo); !errors.Is(err, dialer.ErrNoRoute) {
		t.Errorf("dial without a request: %v", err)
	}
}

// From matches the client address of the request in the context.
func TestTableFrom(t *testing.T) {
	echo := testenv.EchoServer(t)
	j := &journal{}
	a := startProxy(t, "A", j, nil)
	b := startProxy(t, "B", j, nil)
	var anyPort dialer.PortPattern
	high, _ := dialer.ParsePortPattern("gt", "1023")
	tab := &dialer.Table{Routes: []dialer.Route{
		{From: mustAddrPattern(t, "10.0.0.0/8"), Via: via(b.addr)},
		{From: mustAddrPattern(t, "127.0.0.0/8"), FromPort: high, Via: via(a.addr)},
		{From: mustAddrPattern(t, "0/0"), FromPort: anyPort, Via: via(b.addr)},
	}}
	front := startProxy(t, "front", j, func(s *socks.Server) { s.Dialer = tab })
	c, err := (&socks.Dialer{ProxyAddr: front.addr}).Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c)
	want := []string{"front socks_v5 " + echo, "A socks_v5 " + echo}
	if diff := cmp.Diff(want, j.all()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Without a request in the context, From routes other than any do not
	// match: the last route (0/0 matches everything) carries the dial.
	c, err = tab.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c)
	if got := j.all(); got[len(got)-1] != "B socks_v5 "+echo {
		t.Errorf("without a request the dial went %v", got)
	}
}
