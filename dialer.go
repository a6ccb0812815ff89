package socks

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks/httpconnect"
	"github.com/virgilproxy/socks/msproxy"
	"github.com/virgilproxy/socks/socks4"
	"github.com/virgilproxy/socks/socks5"
)

// Dialer makes connections through a proxy: SOCKS4, SOCKS4a, SOCKS5 (with
// the proxy or this side resolving names) or HTTP CONNECT, optionally over
// TLS to the proxy. It implements proxy.Dialer and proxy.ContextDialer, so
// it serves as an http.Transport's DialContext and as a Server's Dialer
// (which chains that server to an upstream proxy). Its fields must not
// change while it is in use.
//
// Errors are *net.OpError values with Op "proxyconnect"; when the proxy
// refused, a *ReplyError with the proxy's answer is reachable through
// errors.As.
type Dialer struct {
	// Protocol is the proxy protocol: ProtocolSOCKS5 (the zero value
	// means SOCKS5 too), ProtocolSOCKS4, ProtocolSOCKS4a or
	// ProtocolHTTPConnect; or ProtocolMSProxy, where ProxyAddr is the MS
	// Proxy's UDP control address (port 1745 by default) and Username is
	// sent as the client's user name (see package msproxy).
	Protocol Protocol
	// ProxyAddr is the proxy's host:port.
	ProxyAddr string
	// ResolveLocally makes a SOCKS5 Dialer resolve host names itself and
	// send the proxy an IP address (the socks5:// scheme); by default names
	// go to the proxy unresolved (socks5h://). SOCKS4 always resolves
	// locally; SOCKS4a and HTTP CONNECT always send names.
	ResolveLocally bool
	// Username and Password authenticate to the proxy: RFC 1929 for SOCKS5,
	// Basic Proxy-Authorization for HTTP, and the USERID field (Username
	// only) for SOCKS4.
	Username, Password string
	// TLSConfig, if set, wraps the connection to the proxy in TLS (an
	// https:// proxy). An empty ServerName is taken from ProxyAddr.
	TLSConfig *tls.Config
	// Forward reaches the proxy; nil means a net.Dialer. Set it to another
	// Dialer to chain proxies.
	Forward proxy.ContextDialer
	// Resolver resolves names when this side must; nil means
	// net.DefaultResolver.
	Resolver *net.Resolver
	// Timeout bounds the whole dial, handshake included; zero means no
	// limit beyond the context's.
	Timeout time.Duration
}

var (
	_ proxy.Dialer        = (*Dialer)(nil)
	_ proxy.ContextDialer = (*Dialer)(nil)
)

// Dial connects to address through the proxy.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address through the proxy. network must be
// "tcp", "tcp4" or "tcp6". Cancelling ctx ends the dial, the handshake
// included, promptly.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, d.opError(network, nil, net.UnknownNetworkError(network))
	}
	dest, err := ParseAddr(address)
	if err != nil {
		return nil, d.opError(network, nil, err)
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	if d.Protocol == ProtocolMSProxy {
		c, err := d.msproxy().DialContext(ctx, network, address)
		return c, msproxyError(err)
	}
	conn, _, err := d.request(ctx, network, byte(socks5.CommandConnect), dest)
	return conn, err
}

// withTimeout bounds ctx by the Dialer's Timeout, when it has one.
func (d *Dialer) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.Timeout > 0 {
		return context.WithTimeout(ctx, d.Timeout)
	}
	return ctx, func() {}
}

// request connects to the proxy and makes the request cmd for dest. It
// returns the connection to use and the address the proxy reported, or a
// *net.OpError.
func (d *Dialer) request(ctx context.Context, network string, cmd byte, dest Addr) (net.Conn, Addr, error) {
	c, err := d.connectProxy(ctx)
	if err != nil {
		return nil, Addr{}, d.opError(network, dest, err)
	}
	conn, bound, err := d.handshake(ctx, c, cmd, dest)
	if err != nil {
		c.Close()
		return nil, Addr{}, d.opError(network, dest, err)
	}
	return conn, bound, nil
}

func (d *Dialer) opError(network string, dest net.Addr, err error) error {
	var src net.Addr
	if d.ProxyAddr != "" {
		src = proxyAddr(d.ProxyAddr)
	}
	return &net.OpError{Op: "proxyconnect", Net: network, Source: src, Addr: dest, Err: err}
}

// proxyAddr names the proxy in errors.
type proxyAddr string

func (a proxyAddr) Network() string { return "tcp" }
func (a proxyAddr) String() string  { return string(a) }

// connectProxy opens the connection to the proxy, in TLS when configured.
func (d *Dialer) connectProxy(ctx context.Context) (net.Conn, error) {
	if d.ProxyAddr == "" {
		return nil, errors.New("socks: Dialer has no ProxyAddr")
	}
	fwd := d.Forward
	if fwd == nil {
		fwd = defaultDialer
	}
	c, err := fwd.DialContext(ctx, "tcp", d.ProxyAddr)
	if err != nil {
		return nil, err
	}
	if d.TLSConfig == nil {
		return c, nil
	}
	cfg := d.TLSConfig
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(d.ProxyAddr)
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// handshake runs the protocol's request for cmd on c, an open connection
// to the proxy. It returns the connection to use (c, or c with bytes the
// proxy sent early) and the address the proxy reported.
func (d *Dialer) handshake(ctx context.Context, c net.Conn, cmd byte, dest Addr) (net.Conn, Addr, error) {
	// The context reaches the handshake through the connection's deadline.
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	}
	br := bufPool.Get().(*bufio.Reader)
	br.Reset(c)
	defer func() {
		br.Reset(nil)
		bufPool.Put(br)
	}()

	var bound Addr
	var err error
	switch d.Protocol {
	case ProtocolSOCKS5, 0:
		bound, err = d.socks5Handshake(ctx, c, br, cmd, dest)
	case ProtocolSOCKS4, ProtocolSOCKS4a:
		bound, err = d.socks4Handshake(ctx, c, br, cmd, dest)
	case ProtocolHTTPConnect:
		if cmd != byte(socks5.CommandConnect) {
			err = &ReplyError{Code: ReplyCommandNotSupported, Err: errors.New("HTTP CONNECT proxies only connect")}
			break
		}
		err = d.httpHandshake(c, br, dest)
	default:
		err = fmt.Errorf("socks: Dialer cannot speak %v", d.Protocol)
	}
	if !stop() {
		// The context ended during the handshake: report that, not the
		// deadline error it caused.
		return nil, Addr{}, ctx.Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, Addr{}, err
	}
	c.SetDeadline(time.Time{})
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		return &prefixConn{Conn: c, prefix: append([]byte(nil), p...)}, bound, nil
	}
	return c, bound, nil
}

// writeBufPool holds the buffers client handshakes are written from.
var writeBufPool = sync.Pool{New: func() any { return new([600]byte) }}

// resolve returns an IP for dest, resolving a name with the Dialer's
// resolver. ipv4Only restricts the answer to IPv4 (SOCKS4).
func (d *Dialer) resolve(ctx context.Context, dest Addr, ipv4Only bool) (netip.Addr, error) {
	if dest.Name == "" {
		if ipv4Only && !dest.IP.Is4() {
			return netip.Addr{}, &ReplyError{Code: ReplyAddressTypeNotSupported, Err: errors.New("SOCKS4 carries only IPv4 addresses")}
		}
		return dest.IP, nil
	}
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	network := "ip"
	if ipv4Only {
		network = "ip4"
	}
	ips, err := r.LookupNetIP(ctx, network, dest.Name)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, &net.DNSError{Err: "no suitable address", Name: dest.Name, IsNotFound: true}
	}
	return ips[0].Unmap(), nil
}

func (d *Dialer) socks5Handshake(ctx context.Context, c net.Conn, br *bufio.Reader, cmd byte, dest Addr) (Addr, error) {
	wb := writeBufPool.Get().(*[600]byte)
	defer writeBufPool.Put(wb)
	buf := wb[:0]
	methodList := [2]socks5.Method{socks5.MethodNoAuth, socks5.MethodUsernamePassword}
	methods := methodList[:1]
	if d.Username != "" {
		methods = methodList[:2]
	}
	b, err := socks5.AppendGreeting(buf, methods...)
	if err != nil {
		return Addr{}, err
	}
	if _, err := c.Write(b); err != nil {
		return Addr{}, err
	}
	m, err := socks5.ReadMethodSelection(br)
	if err != nil {
		return Addr{}, err
	}
	switch {
	case m == socks5.MethodNoAuth:
	case m == socks5.MethodUsernamePassword && d.Username != "":
		b, err := socks5.AppendUsernamePasswordRequest(buf, d.Username, d.Password)
		if err != nil {
			return Addr{}, err
		}
		if _, err := c.Write(b); err != nil {
			return Addr{}, err
		}
		ok, err := socks5.ReadUsernamePasswordReply(br)
		if err != nil {
			return Addr{}, err
		}
		if !ok {
			return Addr{}, &ReplyError{Code: ReplyAuthFailed, Err: errors.New("the proxy rejected the user name or password")}
		}
	case m == socks5.MethodNoAcceptable:
		return Addr{}, &ReplyError{Code: ReplyAuthFailed, Err: fmt.Errorf("the proxy accepts none of the offered methods %v", methods)}
	default:
		return Addr{}, fmt.Errorf("socks: the proxy chose method %v, which was not offered", m)
	}

	req := socks5.Request{Command: socks5.Command(cmd), Addr: socks5.Addr{Name: dest.Name, IP: dest.IP, Port: dest.Port}}
	if d.ResolveLocally && dest.Name != "" {
		ip, err := d.resolve(ctx, dest, false)
		if err != nil {
			return Addr{}, err
		}
		req.Addr = socks5.Addr{IP: ip, Port: dest.Port}
	}
	if b, err = socks5.AppendRequest(buf, req); err != nil {
		return Addr{}, err
	}
	if _, err := c.Write(b); err != nil {
		return Addr{}, err
	}
	return readSOCKS5Reply(br)
}

// readSOCKS5Reply reads a SOCKS5 reply and turns a failure into a
// *ReplyError.
func readSOCKS5Reply(br *bufio.Reader) (Addr, error) {
	rep, err := socks5.ReadReply(br)
	if err != nil {
		return Addr{}, err
	}
	bound := destAddr(rep.Addr.Name, rep.Addr.IP, rep.Addr.Port)
	if rep.Code != socks5.ReplySucceeded {
		code := ReplyGeneralFailure
		if rep.Code <= socks5.ReplyAddressTypeNotSupported {
			code = ReplyCode(rep.Code)
		}
		return bound, &ReplyError{Code: code, Err: fmt.Errorf("the SOCKS5 proxy answered %v", rep.Code)}
	}
	return bound, nil
}

func (d *Dialer) socks4Handshake(ctx context.Context, c net.Conn, br *bufio.Reader, cmd byte, dest Addr) (Addr, error) {
	req := socks4.Request{Command: socks4.Command(cmd), Port: dest.Port, UserID: d.Username}
	if d.Protocol == ProtocolSOCKS4a && dest.Name != "" {
		req.Host = dest.Name
	} else {
		ip, err := d.resolve(ctx, dest, true)
		if err != nil {
			return Addr{}, err
		}
		req.IP = ip
	}
	wb := writeBufPool.Get().(*[600]byte)
	defer writeBufPool.Put(wb)
	b, err := socks4.AppendRequest(wb[:0], req)
	if err != nil {
		return Addr{}, err
	}
	if _, err := c.Write(b); err != nil {
		return Addr{}, err
	}
	return readSOCKS4Reply(br)
}

// readSOCKS4Reply reads a SOCKS4 reply and turns a failure into a
// *ReplyError.
func readSOCKS4Reply(br *bufio.Reader) (Addr, error) {
	rep, err := socks4.ReadReply(br)
	if err != nil {
		return Addr{}, err
	}
	bound := Addr{IP: rep.IP, Port: rep.Port}
	switch rep.Code {
	case socks4.ReplyGranted:
		return bound, nil
	case socks4.ReplyNoIdentd:
		return bound, &ReplyError{Code: ReplyIdentUnreachable, Err: errors.New("the SOCKS4 proxy could not reach our identd (92)")}
	case socks4.ReplyIdentMismatch:
		return bound, &ReplyError{Code: ReplyIdentMismatch, Err: errors.New("the SOCKS4 proxy's identd check failed (93)")}
	}
	return bound, &ReplyError{Code: ReplyGeneralFailure, Err: fmt.Errorf("the SOCKS4 proxy rejected the request (%d)", rep.Code)}
}

func (d *Dialer) httpHandshake(c net.Conn, br *bufio.Reader, dest Addr) error {
	b := httpconnect.AppendRequest(make([]byte, 0, 256), dest.String(), d.Username, d.Password, d.Username != "")
	if _, err := c.Write(b); err != nil {
		return err
	}
	resp, err := httpconnect.ReadResponse(br, DefaultMaxHeaderBytes)
	if err != nil {
		return err
	}
	if resp.Status/100 == 2 {
		return nil
	}
	return &ReplyError{Code: replyForHTTPStatus(resp.Status), Err: errors.New("the HTTP proxy answered " + strconv.Itoa(resp.Status) + " " + resp.Reason)}
}

// msproxy returns the MS Proxy v2 client for d's settings.
func (d *Dialer) msproxy() *msproxy.Dialer {
	return &msproxy.Dialer{Server: d.ProxyAddr, User: d.Username, Forward: d.Forward}
}

// msproxyError gives an MS Proxy failure the reply code a chaining server
// passes on, keeping the *net.OpError it came in.
func msproxyError(err error) error {
	var oe *net.OpError
	if err == nil || !errors.As(err, &oe) {
		return err
	}
	var code ReplyCode
	var ce *msproxy.CommandError
	switch {
	case errors.Is(err, msproxy.ErrRefused):
		code = ReplyConnectionRefused
	case errors.Is(err, msproxy.ErrAuthFailed):
		code = ReplyNotAllowed
	case errors.Is(err, msproxy.ErrUnsupported):
		code = ReplyAddressTypeNotSupported
	case errors.As(err, &ce):
		code = ReplyGeneralFailure
	default:
		// Transport, DNS and context errors: ReplyCodeFor reads them as they are.
		return err
	}
	wrapped := *oe
	wrapped.Err = &ReplyError{Code: code, Err: oe.Err}
	return &wrapped
}

// replyForHTTPStatus maps an HTTP proxy's answer to a ReplyCode.
func replyForHTTPStatus(status int) ReplyCode {
	switch status {
	case 403:
		return ReplyNotAllowed
	case 407:
		return ReplyAuthFailed
	case 405, 501:
		return ReplyCommandNotSupported
	case 502, 503:
		return ReplyHostUnreachable
	case 504:
		return ReplyTTLExpired
	}
	return ReplyGeneralFailure
}
