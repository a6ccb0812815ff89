package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/virgilproxy/socks"
)

// errNotLoopback is wrapped by the error for a -proxy that is not on this host.
var errNotLoopback = errors.New("socksbench only loads proxies on loopback (127.0.0.0/8, ::1, localhost)")

// errBadProxy is wrapped by the other -proxy parse errors.
var errBadProxy = errors.New("bad -proxy")

// dialFunc opens a connection to the target address, through the proxy or not.
type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

// proxySpec is a parsed -proxy value.
type proxySpec struct {
	Direct bool
	Dialer socks.Dialer // when not Direct
}

// parseProxy parses "direct" or a proxy URL: socks4://, socks4a://, socks5://
// (this side resolves names), socks5h:// or http:// (HTTP CONNECT), with an
// optional user:password@ and a required port. The host must be a loopback
// address or "localhost".
func parseProxy(s string) (proxySpec, error) {
	if s == "direct" {
		return proxySpec{Direct: true}, nil
	}
	if len(s) > 2048 {
		return proxySpec{}, fmt.Errorf("%w: longer than 2048 bytes", errBadProxy)
	}
	u, err := url.Parse(s)
	if err != nil {
		return proxySpec{}, fmt.Errorf("%w: %v", errBadProxy, err)
	}
	var d socks.Dialer
	switch strings.ToLower(u.Scheme) {
	case "socks4":
		d.Protocol = socks.ProtocolSOCKS4
	case "socks4a":
		d.Protocol = socks.ProtocolSOCKS4a
	case "socks5":
		d.Protocol = socks.ProtocolSOCKS5
		d.ResolveLocally = true
	case "socks5h":
		d.Protocol = socks.ProtocolSOCKS5
	case "http":
		d.Protocol = socks.ProtocolHTTPConnect
	default:
		return proxySpec{}, fmt.Errorf("%w: scheme %q: want socks4, socks4a, socks5, socks5h, http, or the word direct", errBadProxy, u.Scheme)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return proxySpec{}, fmt.Errorf("%w: %q: only scheme://[user[:password]@]host:port", errBadProxy, s)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" || port == "" {
		return proxySpec{}, fmt.Errorf("%w: %q needs a host and a port", errBadProxy, s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return proxySpec{}, fmt.Errorf("%w: port %q", errBadProxy, port)
	}
	if !isLoopbackHost(host) {
		return proxySpec{}, fmt.Errorf("%w: %q", errNotLoopback, host)
	}
	if u.User != nil {
		d.Username = u.User.Username()
		d.Password, _ = u.User.Password()
	}
	d.ProxyAddr = net.JoinHostPort(host, port)
	return proxySpec{Dialer: d}, nil
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP
// literal (127.0.0.0/8, ::1, or an IPv4-mapped form of those), without
// consulting any resolver.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return false
	}
	return a.Unmap().IsLoopback()
}

// dialer returns the dial function for the spec; every dial, handshake
// included, is bounded by timeout.
func (p proxySpec) dialer(timeout time.Duration) dialFunc {
	if p.Direct {
		nd := &net.Dialer{Timeout: timeout}
		return func(ctx context.Context, addr string) (net.Conn, error) {
			return nd.DialContext(ctx, "tcp", addr)
		}
	}
	d := p.Dialer
	d.Timeout = timeout
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}
}
