package dialer

import (
	"github.com/virgilproxy/socks/msproxy"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"

	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks"
)

// Sentinel errors.
var (
	// ErrUnsupported is wrapped by errors for proxy protocols and URL
	// schemes this build does not speak (upnp, unknown schemes).
	ErrUnsupported = errors.New("dialer: unsupported")
	// ErrInvalidURL is wrapped by FromURL's errors for malformed URLs.
	ErrInvalidURL = errors.New("dialer: invalid proxy URL")
)

func init() {
	// socks5 and socks5h are handled by x/net/proxy.FromURL itself before
	// it looks at registered types; see the package documentation.
	for _, scheme := range []string{"socks4", "socks4a", "http", "https", "msproxy"} {
		proxy.RegisterDialerType(scheme, FromURL)
	}
}

// FromURL returns a *socks.Dialer (as a proxy.Dialer, the signature
// proxy.RegisterDialerType wants) for a proxy URL; see [DialerFromURL].
func FromURL(u *url.URL, forward proxy.Dialer) (proxy.Dialer, error) {
	d, err := DialerFromURL(u, forward)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// DialerFromURL returns a *socks.Dialer for a proxy URL:
//
//	socks4://[user@]host[:port]             SOCKS4, names resolved here
//	socks4a://[user@]host[:port]            SOCKS4a, names sent to the proxy
//	socks5://[user:password@]host[:port]    SOCKS5, names resolved here
//	socks5h://[user:password@]host[:port]   SOCKS5, names sent to the proxy
//	http://[user:password@]host[:port]      HTTP CONNECT
//	https://[user:password@]host[:port]     HTTP CONNECT over TLS to the proxy
//
// Default ports are 1080 for SOCKS, 80 for http and 443 for https. A
// SOCKS4 URL may carry a user (sent as USERID) but no password. The
// Dialer's Forward is forward when that is a proxy.ContextDialer, nil for
// nil or proxy.Direct, and otherwise an adapter that runs forward's Dial
// under the context.
func DialerFromURL(u *url.URL, forward proxy.Dialer) (*socks.Dialer, error) {
	if u == nil {
		return nil, fmt.Errorf("%w: nil URL", ErrInvalidURL)
	}
	d := &socks.Dialer{Forward: contextDialer(forward)}
	port := "1080"
	switch u.Scheme {
	case "socks4":
		d.Protocol = socks.ProtocolSOCKS4
	case "socks4a":
		d.Protocol = socks.ProtocolSOCKS4a
	case "socks5":
		d.Protocol, d.ResolveLocally = socks.ProtocolSOCKS5, true
	case "socks5h":
		d.Protocol = socks.ProtocolSOCKS5
	case "http":
		d.Protocol, port = socks.ProtocolHTTPConnect, "80"
	case "https":
		d.Protocol, port = socks.ProtocolHTTPConnect, "443"
		d.TLSConfig = &tls.Config{ServerName: u.Hostname()}
	case "msproxy":
		d.Protocol, port = socks.ProtocolMSProxy, strconv.Itoa(msproxy.DefaultPort)
	default:
		return nil, fmt.Errorf("%w: proxy URL scheme %q", ErrUnsupported, u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("%w %s: no host", ErrInvalidURL, u.Redacted())
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%w %s: port %q", ErrInvalidURL, u.Redacted(), p)
		}
		port = p
	}
	d.ProxyAddr = net.JoinHostPort(host, port)
	if u.User != nil {
		d.Username = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			if d.Protocol == socks.ProtocolSOCKS4 || d.Protocol == socks.ProtocolSOCKS4a {
				return nil, fmt.Errorf("%w %s: SOCKS4 carries a user ID but no password", ErrInvalidURL, u.Redacted())
			}
			d.Password = pw
		}
	}
	return d, nil
}

// contextDialer turns forward into what socks.Dialer.Forward takes: nil for
// nil and proxy.Direct, forward itself when it has DialContext, else an
// adapter.
func contextDialer(forward proxy.Dialer) proxy.ContextDialer {
	switch f := forward.(type) {
	case nil:
		return nil
	case proxy.ContextDialer:
		if forward == proxy.Direct {
			return nil
		}
		return f
	}
	return plainDialer{forward}
}

// plainDialer gives a proxy.Dialer without DialContext a DialContext that
// returns when the context ends (the Dial goroutine finishes on its own
// and its connection, if any, is closed).
type plainDialer struct{ d proxy.Dialer }

func (p plainDialer) Dial(network, addr string) (net.Conn, error) { return p.d.Dial(network, addr) }

func (p plainDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := p.d.Dial(network, addr)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
