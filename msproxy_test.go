package socks_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/internal/testenv"
	"github.com/virgilproxy/socks/msproxy"
)

// startMSProxy serves an MS Proxy v2 server on a loopback UDP port.
func startMSProxy(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &msproxy.Server{Logger: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() { srv.Serve(pc); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return pc.LocalAddr().String()
}

func TestDialerMSProxy(t *testing.T) {
	target := testenv.LineServer(t, "echo:")
	d := &socks.Dialer{Protocol: socks.ProtocolMSProxy, ProxyAddr: startMSProxy(t), Username: "tester"}
	c, err := d.DialContext(context.Background(), "tcp", strings.Replace(target, "127.0.0.1", "localhost", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)

	bindRoundTrip(t, d, "0.0.0.0:0", "127.0.0.1")

	closed := testenv.Listen(t)
	closedAddr := closed.Addr().String()
	closed.Close()
	_, err = d.Dial("tcp", closedAddr)
	var re *socks.ReplyError
	if !errors.As(err, &re) || re.Code != socks.ReplyConnectionRefused {
		t.Fatalf("dial to a closed port = %v, want reply connection refused", err)
	}
}

// TestServerChainsThroughMSProxy: a SOCKS server whose outbound
// connections go through an MS Proxy.
func TestServerChainsThroughMSProxy(t *testing.T) {
	target := testenv.LineServer(t, "echo:")
	front := quietServer(t, &socks.Server{Dialer: &socks.Dialer{Protocol: socks.ProtocolMSProxy, ProxyAddr: startMSProxy(t)}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := (&socks.Dialer{ProxyAddr: front}).DialContext(ctx, "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)
}
