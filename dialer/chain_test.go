package dialer_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/dialer"
	"github.com/virgilproxy/socks/internal/testenv"
)

// A connection through a chain of three servers (SOCKS5, HTTP CONNECT,
// SOCKS4a) passes each of them, in order.
func TestChainThreeServers(t *testing.T) {
	echo := testenv.EchoServer(t)
	j := &journal{}
	s1 := startProxy(t, "s1", j, nil)
	s2 := startProxy(t, "s2", j, func(s *socks.Server) { s.HTTPConnect = true })
	s3 := startProxy(t, "s3", j, nil)
	hops := []*socks.Dialer{
		{Protocol: socks.ProtocolSOCKS5, ProxyAddr: s1.addr},
		{Protocol: socks.ProtocolHTTPConnect, ProxyAddr: s2.addr},
		{Protocol: socks.ProtocolSOCKS4a, ProxyAddr: s3.addr},
	}
	before := make([]socks.Dialer, len(hops))
	for i, h := range hops {
		before[i] = *h
	}
	d, err := dialer.Chain(hops...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		c, err := d.Dial("tcp", echo)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		echoRoundTrip(t, c)
	}
	hop := []string{
		"s1 socks_v5 " + s2.addr,
		"s2 http " + s3.addr,
		"s3 socks_v4 " + echo,
	}
	want := append(append([]string(nil), hop...), hop...)
	if diff := cmp.Diff(want, j.all()); diff != "" {
		t.Errorf("the servers saw (-want +got):\n%s", diff)
	}
	// The caller's dialers are unchanged.
	for i, h := range hops {
		if *h != before[i] {
			t.Errorf("hop %d was modified: %+v", i, *h)
		}
	}
	if d == hops[2] || d.Forward == nil || d.Forward == hops[1] {
		t.Error("Chain returned or linked the caller's dialers instead of copies")
	}
}

func TestChainErrors(t *testing.T) {
	if _, err := dialer.Chain(); !errors.Is(err, dialer.ErrEmptyChain) {
		t.Errorf("Chain(): %v", err)
	}
	if _, err := dialer.Chain(&socks.Dialer{ProxyAddr: "127.0.0.1:1"}, nil); err == nil {
		t.Error("Chain with a nil hop succeeded")
	}
	if _, err := dialer.Chain(&socks.Dialer{}); err == nil {
		t.Error("Chain with a hop without ProxyAddr succeeded")
	}
	one := &socks.Dialer{ProxyAddr: "127.0.0.1:1"}
	d, err := dialer.Chain(one)
	if err != nil || d == one || *d != *one {
		t.Errorf("Chain(one) = %p %v, want a copy of %p", d, err, one)
	}
}
