package dialer_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks/dialer"
	"github.com/virgilproxy/socks/internal/testenv"
	"github.com/virgilproxy/socks/msproxy"
)

// TestMSProxyRouteAndURL: a Dante 1.1.x-style route with proxyprotocol:
// msproxy_v2, and an msproxy:// URL through proxy.FromURL, both reach a
// target through a real MS Proxy v2 server on loopback.
func TestMSProxyRouteAndURL(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &msproxy.Server{Logger: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() { srv.Serve(pc); close(done) }()
	defer func() { srv.Close(); <-done }()
	host, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	target := testenv.LineServer(t, "echo:")

	conf := "route { from: 0/0 to: 0/0 via: " + host + " port = " + port + "\nproxyprotocol: msproxy_v2\n}\n"
	table, _, err := dialer.ParseRoutes(strings.NewReader(conf), nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("msproxy://" + pc.LocalAddr().String())
	viaURL, err := proxy.FromURL(u, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]proxy.Dialer{"route": table, "url": viaURL} {
		c, err := d.Dial("tcp", target)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "ms\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || line != "echo:ms\n" {
			t.Fatalf("%s: read %q, %v", name, line, err)
		}
	}
}
