package dialer_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/dialer"
	"github.com/virgilproxy/socks/internal/testenv"
)

// plainOnly is a proxy.Dialer without DialContext.
type plainOnly struct{ d net.Dialer }

func (p *plainOnly) Dial(network, addr string) (net.Conn, error) { return p.d.Dial(network, addr) }

func TestDialerFromURL(t *testing.T) {
	fwd := &net.Dialer{}
	tests := []struct {
		url     string
		forward proxy.Dialer
		want    socks.Dialer
		tls     string // the TLS ServerName expected, "" for no TLS
	}{
		{url: "socks4://h.example", want: socks.Dialer{Protocol: socks.ProtocolSOCKS4, ProxyAddr: "h.example:1080"}},
		{url: "socks4://joe@h.example:1081", want: socks.Dialer{Protocol: socks.ProtocolSOCKS4, ProxyAddr: "h.example:1081", Username: "joe"}},
		{url: "socks4a://10.0.0.1:9050", want: socks.Dialer{Protocol: socks.ProtocolSOCKS4a, ProxyAddr: "10.0.0.1:9050"}},
		{url: "socks5://u:p@[::1]", want: socks.Dialer{Protocol: socks.ProtocolSOCKS5, ProxyAddr: "[::1]:1080", ResolveLocally: true, Username: "u", Password: "p"}},
		{url: "socks5h://h.example:1", forward: proxy.Direct, want: socks.Dialer{Protocol: socks.ProtocolSOCKS5, ProxyAddr: "h.example:1"}},
		{url: "http://a%40b:c%3Ad@h.example", want: socks.Dialer{Protocol: socks.ProtocolHTTPConnect, ProxyAddr: "h.example:80", Username: "a@b", Password: "c:d"}},
		{url: "msproxy://u@ms.example", want: socks.Dialer{Protocol: socks.ProtocolMSProxy, ProxyAddr: "ms.example:1745", Username: "u"}},
		{url: "https://h.example", want: socks.Dialer{Protocol: socks.ProtocolHTTPConnect, ProxyAddr: "h.example:443"}, tls: "h.example"},
		{url: "https://h.example:8443", forward: fwd, want: socks.Dialer{Protocol: socks.ProtocolHTTPConnect, ProxyAddr: "h.example:8443", Forward: fwd}, tls: "h.example"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		d, err := dialer.DialerFromURL(u, tt.forward)
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		gotTLS := ""
		if d.TLSConfig != nil {
			gotTLS = d.TLSConfig.ServerName
		}
		if gotTLS != tt.tls {
			t.Errorf("%s: TLS ServerName %q, want %q", tt.url, gotTLS, tt.tls)
		}
		got := *d
		got.TLSConfig = nil
		if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(socks.Dialer{}), cmp.Comparer(func(a, b proxy.ContextDialer) bool { return a == b })); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.url, diff)
		}
	}
}

func TestDialerFromURLForwardAdapter(t *testing.T) {
	u, _ := url.Parse("socks5h://127.0.0.1:1")
	d, err := dialer.DialerFromURL(u, &plainOnly{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Forward == nil {
		t.Fatal("a plain proxy.Dialer was dropped")
	}
	// The adapter honours a cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Forward.DialContext(ctx, "tcp", "127.0.0.1:1"); !errors.Is(err, context.Canceled) {
		t.Errorf("adapter with a cancelled context: %v", err)
	}
}

func TestDialerFromURLErrors(t *testing.T) {
	tests := []struct {
		url  string
		want error
	}{
		{"ftp://h.example", dialer.ErrUnsupported},
		{"socks5://", dialer.ErrInvalidURL},
		{"socks5://h.example:0", dialer.ErrInvalidURL},
		{"socks4://u:p@h.example", dialer.ErrInvalidURL},
		{"socks4a://u:p@h.example", dialer.ErrInvalidURL},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dialer.FromURL(u, nil); !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.url, err, tt.want)
		}
	}
	if _, err := dialer.FromURL(nil, nil); !errors.Is(err, dialer.ErrInvalidURL) {
		t.Errorf("nil URL: %v", err)
	}
}

// proxy.FromURL reaches this package for the registered schemes and a
// working connection results; socks5 stays x/net's own.
func TestProxyFromURL(t *testing.T) {
	echo := testenv.EchoServer(t)
	j := &journal{}
	p := startProxy(t, "p", j, func(s *socks.Server) { s.HTTPConnect = true })
	for _, scheme := range []string{"socks4", "socks4a", "http"} {
		u, _ := url.Parse(scheme + "://" + p.addr)
		d, err := proxy.FromURL(u, proxy.Direct)
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		sd, ok := d.(*socks.Dialer)
		if !ok {
			t.Fatalf("%s: proxy.FromURL returned %T, not a *socks.Dialer", scheme, d)
		}
		if sd.Forward != nil {
			t.Errorf("%s: proxy.Direct became Forward %T, want nil", scheme, sd.Forward)
		}
		c, err := d.Dial("tcp", echo)
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		echoRoundTrip(t, c)
	}
	want := []string{"p socks_v4 " + echo, "p socks_v4 " + echo, "p http " + echo}
	if diff := cmp.Diff(want, j.all()); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
	u, _ := url.Parse("socks5h://" + p.addr)
	if d, err := proxy.FromURL(u, proxy.Direct); err != nil {
		t.Fatal(err)
	} else if _, ours := d.(*socks.Dialer); ours {
		t.Error("x/net/proxy now consults registered types for socks5h; register socks5 and socks5h in init")
	}
}

// fromEnvironmentChecked is set once TestProxyFromEnvironment has run in
// this process.
var fromEnvironmentChecked bool

// proxy.FromEnvironment reads ALL_PROXY once per process, so this is the
// only test in the package that calls it.
func TestProxyFromEnvironment(t *testing.T) {
	echo := testenv.EchoServer(t)
	j := &journal{}
	p := startProxy(t, "env", j, nil)
	t.Setenv("ALL_PROXY", "socks4a://"+p.addr)
	t.Setenv("all_proxy", "")
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	d := proxy.FromEnvironment()
	sd, ok := d.(*socks.Dialer)
	if !ok {
		t.Fatalf("proxy.FromEnvironment returned %T, want *socks.Dialer", d)
	}
	if sd.ProxyAddr != p.addr && fromEnvironmentChecked {
		t.Skip("x/net/proxy read ALL_PROXY in an earlier run of this test (-count > 1) and keeps it per process")
	}
	fromEnvironmentChecked = true
	_, port, _ := net.SplitHostPort(echo)
	c, err := d.Dial("tcp", net.JoinHostPort("localhost", port))
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c)
	// SOCKS4a sent the name to the proxy.
	if diff := cmp.Diff([]string{"env socks_v4a localhost:" + port}, j.all()); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
}
