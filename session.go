package socks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/virgilproxy/socks/auth"
	"github.com/virgilproxy/socks/httpconnect"
	"github.com/virgilproxy/socks/socks4"
	"github.com/virgilproxy/socks/socks5"
)

// noIdentity is the Identity of every client that did not authenticate.
// It is shared: handlers must treat Request.Identity as read-only.
var noIdentity = &auth.Identity{Method: auth.MethodNone}

// session is one client connection being served. It is the ReplyWriter
// handed to the handler chain. It lives in one allocation together with
// its Request and Traffic.
type session struct {
	srv    *Server
	conn   net.Conn           // as accepted; closed by ServeConn
	client net.Conn           // as handed to the protocol handler by the ConnMiddleware chain
	cancel context.CancelFunc // nil when ctx is the Server's own (Serve without BaseContext)

	req      Request
	traffic  Traffic
	identity auth.Identity

	br    *bufio.Reader // handshake reader; nil once released
	early []byte        // bytes the client sent after its request, read by the handshake
	// prefixed is the client connection with early in front, once Conn
	// made it.
	prefixed *prefixConn

	// Detached sessions (see Server.relayDetached).
	detachable bool         // Serve's session, built-in handler only
	refs       atomic.Int32 // the session's goroutine and the relay, once detached
	ctx        context.Context
	relayErr   error

	replies int
	code    ReplyCode
	logged  bool // a line naming this session was logged
	// wb holds the reply being built, from replyBufs, between replyBuf
	// and write (a longer reply, e.g. a 407 with a long realm, grows past
	// it). Not kept in the session: 128 bytes less per idle session.
	wb *[128]byte
}

// serveProtocol is the innermost ConnHandler: detection, handshake, then
// the request handler chain.
func (s *Server) serveProtocol(ctx context.Context, c net.Conn) error {
	ss, _ := ctx.Value(sessionKey{}).(*session)
	if ss == nil {
		return errors.New("socks: connection handler called outside Server.ServeConn")
	}
	ss.client = c
	if t := durationOr(s.HandshakeTimeout, DefaultHandshakeTimeout); t > 0 {
		c.SetDeadline(time.Now().Add(t))
	}
	ss.br = bufPool.Get().(*bufio.Reader)
	ss.br.Reset(c)
	defer ss.releaseReader()

	first, err := ss.br.Peek(1)
	if err != nil {
		ss.logHandshakeError(ctx, err)
		return err
	}
	switch b := first[0]; {
	case b == socks5.Version:
		err = ss.handshakeSOCKS5(ctx)
	case b == socks4.Version && !s.DisableSOCKS4:
		err = ss.handshakeSOCKS4(ctx)
	case b == socks4.Version:
		ss.req.Protocol = ProtocolSOCKS4
		ss.write(socks4.AppendReply(ss.replyBuf(), socks4.ReplyRejected, netip.AddrPort{}))
		err = errors.New("SOCKS4 is disabled on this server")
	case b >= 'A' && b <= 'Z' && s.HTTPConnect:
		err = ss.handshakeHTTP(ctx)
	case b >= 'A' && b <= 'Z':
		ss.req.Protocol = ProtocolHTTPConnect
		ss.write(httpconnect.AppendResponse(ss.replyBuf(), 400))
		err = errors.New("HTTP request on a port without HTTP CONNECT enabled")
	default:
		err = fmt.Errorf("unknown protocol: first byte %#02x", b)
	}
	if err != nil {
		ss.logHandshakeError(ctx, err)
		return err
	}

	c.SetDeadline(time.Time{})
	if n := ss.br.Buffered(); n > 0 {
		p, _ := ss.br.Peek(n)
		ss.early = append([]byte(nil), p...)
	}
	ss.releaseReader()

	err = s.handler.ServeSOCKS(ctx, ss, &ss.req)
	if err == errDetached {
		return err // the relay logs the end
	}
	// A request not answered yet (or a BIND between its two replies) gets
	// the reply its error asks for.
	if ss.replies == 0 || (ss.req.Command == CommandBind && ss.replies == 1 && err != nil) {
		code := ReplyGeneralFailure
		var re *ReplyError
		if errors.As(err, &re) {
			code = re.Code
		} else if err == nil {
			err = errors.New("socks: handler returned without replying")
		}
		ss.Reply(code, nil)
	}
	ss.logEnd(ctx, err)
	return err
}

func (ss *session) releaseReader() {
	if ss.br != nil {
		ss.br.Reset(nil)
		bufPool.Put(ss.br)
		ss.br = nil
	}
}

var replyBufs = sync.Pool{New: func() any { return new([128]byte) }}

// replyBuf returns an empty buffer to build a reply in; write gives it back.
func (ss *session) replyBuf() []byte {
	if ss.wb == nil {
		ss.wb = replyBufs.Get().(*[128]byte)
	}
	return ss.wb[:0]
}

// write sends handshake bytes to the client.
func (ss *session) write(b []byte) error {
	_, err := ss.client.Write(b)
	if ss.wb != nil {
		replyBufs.Put(ss.wb)
		ss.wb = nil
	}
	return err
}

func (ss *session) setIdentity(m auth.Method, user string) {
	ss.identity = auth.Identity{Method: m, User: user}
	ss.req.Identity = &ss.identity
}

// checkPassword verifies credentials with the server's Authenticator and
// records the identity on success.
func (ss *session) checkPassword(ctx context.Context, user, password string) error {
	if err := ss.srv.Authenticator.CheckPassword(ctx, user, password); err != nil {
		ss.req.Identity = &auth.Identity{Method: auth.MethodUsername, User: user}
		return &authError{user: user, err: err}
	}
	ss.setIdentity(auth.MethodUsername, user)
	return nil
}

// authError is a failed authentication; the password is never in it.
type authError struct {
	user string
	err  error
}

func (e *authError) Error() string {
	return fmt.Sprintf("authentication failed for user %q: %v", e.user, e.err)
}

func (e *authError) Unwrap() error { return e.err }

func (ss *session) handshakeSOCKS5(ctx context.Context) error {
	s := ss.srv
	ss.req.Protocol = ProtocolSOCKS5
	methods, err := socks5.ReadGreeting(ss.br)
	if err != nil {
		if errors.Is(err, socks5.ErrNoMethods) {
			ss.write(socks5.AppendMethodSelection(ss.replyBuf(), socks5.MethodNoAcceptable))
		}
		return err
	}
	method := socks5.MethodNoAcceptable
	switch {
	case s.Authenticator != nil && methods.Has(socks5.MethodUsernamePassword):
		method = socks5.MethodUsernamePassword
	case s.Authenticator == nil && methods.Has(socks5.MethodNoAuth):
		method = socks5.MethodNoAuth
	}
	if err := ss.write(socks5.AppendMethodSelection(ss.replyBuf(), method)); err != nil {
		return err
	}
	switch method {
	case socks5.MethodNoAcceptable:
		return fmt.Errorf("no acceptable authentication method: client offered %v", methods)
	case socks5.MethodUsernamePassword:
		user, password, err := socks5.ReadUsernamePasswordRequest(ss.br)
		if err != nil {
			if !isIOError(err) {
				ss.write(socks5.AppendUsernamePasswordReply(ss.replyBuf(), false))
			}
			return err
		}
		aerr := ss.checkPassword(ctx, user, password)
		if err := ss.write(socks5.AppendUsernamePasswordReply(ss.replyBuf(), aerr == nil)); err != nil {
			return err
		}
		if aerr != nil {
			return aerr
		}
	default:
		ss.req.Identity = noIdentity
	}

	req, err := socks5.ReadRequest(ss.br)
	if err != nil {
		if code, ok := socks5.ReplyFor(err); ok {
			ss.write(socks5.AppendReply(ss.replyBuf(), code, socks5.Addr{}))
		}
		return err
	}
	switch req.Command {
	case socks5.CommandConnect:
		ss.req.Command = CommandConnect
	case socks5.CommandBind:
		ss.req.Command = CommandBind
	case socks5.CommandUDPAssociate:
		ss.req.Command = CommandAssociate
	}
	ss.req.Dest = destAddr(req.Addr.Name, req.Addr.IP, req.Addr.Port)
	return nil
}

func (ss *session) handshakeSOCKS4(ctx context.Context) error {
	s := ss.srv
	ss.req.Protocol = ProtocolSOCKS4
	req, err := socks4.ReadRequest(ss.br)
	if req.IsSOCKS4a() {
		ss.req.Protocol = ProtocolSOCKS4a
	}
	if err != nil {
		if !isIOError(err) {
			ss.write(socks4.AppendReply(ss.replyBuf(), socks4.ReplyRejected, netip.AddrPort{}))
		}
		return err
	}
	ss.req.UserID = req.UserID
	if s.Authenticator != nil {
		// SOCKS4 has no way to authenticate. Refuse rather than let it
		// bypass the requirement (Dante's CVE-2024-54662).
		ss.write(socks4.AppendReply(ss.replyBuf(), socks4.ReplyRejected, netip.AddrPort{}))
		return errors.New("SOCKS4 request refused: this server requires authentication, which SOCKS4 cannot do")
	}
	ss.req.Identity = noIdentity
	switch req.Command {
	case socks4.CommandConnect:
		ss.req.Command = CommandConnect
	case socks4.CommandBind:
		ss.req.Command = CommandBind
	}
	if req.IsSOCKS4a() {
		ss.req.Dest = destAddr(req.Host, netip.Addr{}, req.Port)
	} else {
		ss.req.Dest = Addr{IP: req.IP, Port: req.Port}
	}
	return nil
}

func (ss *session) handshakeHTTP(ctx context.Context) error {
	s := ss.srv
	ss.req.Protocol = ProtocolHTTPConnect
	max := s.MaxHeaderBytes
	if max <= 0 {
		max = DefaultMaxHeaderBytes
	}
	req, err := httpconnect.ReadRequest(ss.br, max)
	if err != nil {
		var se *httpconnect.StatusError
		if errors.As(err, &se) {
			ss.write(httpconnect.AppendResponse(ss.replyBuf(), se.Status))
		}
		return err
	}
	ss.req.Command = CommandConnect
	ss.req.Dest = destAddr(req.Host, netip.Addr{}, req.Port)
	if s.Authenticator == nil {
		ss.req.Identity = noIdentity
		return nil
	}
	aerr := errors.New("no Proxy-Authorization credentials")
	if req.HasCredentials {
		aerr = ss.checkPassword(ctx, req.Username, req.Password)
	}
	if aerr != nil {
		ss.write(httpconnect.AppendResponse(ss.replyBuf(), 407, httpconnect.ProxyAuthenticate(ss.realm())))
		return aerr
	}
	return nil
}

func (ss *session) realm() string {
	if ss.srv.Realm != "" {
		return ss.srv.Realm
	}
	return DefaultRealm
}

// destAddr makes an Addr from a name or an IP; a name that is an IP
// literal becomes the IP.
func destAddr(name string, ip netip.Addr, port uint16) Addr {
	if name != "" {
		if parsed, err := netip.ParseAddr(name); err == nil {
			return Addr{IP: parsed.Unmap(), Port: port}
		}
		return Addr{Name: name, Port: port}
	}
	return Addr{IP: ip.Unmap(), Port: port}
}

// isIOError reports whether err is a failure to read rather than bad
// input: such a connection gets no reply.
func isIOError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ne)
}

// Reply implements ReplyWriter.
func (ss *session) Reply(code ReplyCode, bound net.Addr) error {
	b := ss.replyBuf()
	switch ss.req.Protocol {
	case ProtocolSOCKS5:
		var ba socks5.Addr
		if ap, ok := addrPortOf(bound); ok {
			ba = socks5.AddrFromAddrPort(ap)
		} else if a, ok := bound.(Addr); ok && a.Name != "" {
			ba = socks5.Addr{Name: a.Name, Port: a.Port}
		}
		b = socks5.AppendReply(b, code.SOCKS5Code(), ba)
	case ProtocolSOCKS4, ProtocolSOCKS4a:
		ap, _ := addrPortOf(bound)
		b = socks4.AppendReply(b, code.SOCKS4Code(), ap)
	case ProtocolHTTPConnect:
		switch status := code.HTTPStatus(); status {
		case 407:
			b = httpconnect.AppendResponse(b, status, httpconnect.ProxyAuthenticate(ss.realm()))
		default:
			b = httpconnect.AppendResponse(b, status)
		}
	}
	ss.replies++
	ss.code = code
	if ss.replies == 1 {
		ss.logConnect(code, bound)
	}
	return ss.write(b)
}

// Replied implements ReplyWriter.
func (ss *session) Replied() bool { return ss.replies > 0 }

// Conn implements ReplyWriter. Every call returns the same connection, so
// bytes read ahead are delivered once however many callers ask.
func (ss *session) Conn() net.Conn {
	if len(ss.early) > 0 {
		ss.prefixed = &prefixConn{Conn: ss.client, prefix: ss.early}
		ss.early = nil
	}
	if ss.prefixed != nil {
		return ss.prefixed
	}
	return ss.client
}

// addrPortOf returns the IP and port of a *net.TCPAddr, *net.UDPAddr or an
// IP Addr.
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort(), a != nil
	case *net.UDPAddr:
		return a.AddrPort(), a != nil
	case Addr:
		return a.AddrPort()
	}
	return netip.AddrPort{}, false
}

func (ss *session) baseAttrs(attrs []slog.Attr) []slog.Attr {
	attrs = append(attrs, slog.String("client", addrString(ss.req.Client)))
	if id := ss.req.Identity; id != nil && id.User != "" {
		attrs = append(attrs, slog.String("user", id.User))
	}
	if ss.req.Protocol != 0 {
		attrs = append(attrs, slog.String("protocol", ss.req.Protocol.String()))
	}
	if ss.req.Command != 0 {
		attrs = append(attrs, slog.String("command", ss.req.Command.String()), slog.String("dest", ss.req.Dest.String()))
	}
	return attrs
}

func (ss *session) logConnect(code ReplyCode, bound net.Addr) {
	l := ss.srv.logger()
	ctx := context.Background()
	if !l.Enabled(ctx, slog.LevelInfo) {
		return
	}
	ss.logged = true
	// On a pool goroutine: a slog handler grows a stack to 8 KiB, and the
	// session's goroutine is about to block for the whole relay (see
	// deepPool).
	ss.srv.deep.do(func() { ss.logConnectNow(l, code, bound) })
}

func (ss *session) logConnectNow(l *slog.Logger, code ReplyCode, bound net.Addr) {
	var buf [8]slog.Attr
	attrs := append(ss.baseAttrs(buf[:0]), slog.String("reply", code.String()))
	if bound != nil {
		attrs = append(attrs, slog.String("bound", bound.String()))
	}
	l.LogAttrs(context.Background(), slog.LevelInfo, "connect", attrs...)
}

func (ss *session) logEnd(ctx context.Context, err error) {
	l := ss.srv.logger()
	if !l.Enabled(ctx, slog.LevelInfo) {
		return
	}
	ss.logEndNow(ctx, l, err)
}

// logEndNow writes the disconnect line. It is apart from logEnd so that
// its attribute buffer (0.6 KiB of frame) is not on the stack when the
// line is disabled: a detached session ends on a relay goroutine's small
// stack, which the buffer would make grow.
//
//go:noinline
func (ss *session) logEndNow(ctx context.Context, l *slog.Logger, err error) {
	var buf [12]slog.Attr
	attrs := append(ss.baseAttrs(buf[:0]),
		slog.String("reply", ss.code.String()),
		slog.Int64("bytes_from_client", ss.traffic.FromClient.Load()),
		slog.Int64("bytes_to_client", ss.traffic.ToClient.Load()),
		slog.Duration("duration", time.Since(ss.req.Start)),
	)
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	ss.logged = true
	l.LogAttrs(ctx, slog.LevelInfo, "disconnect", attrs...)
}

func (ss *session) logHandshakeError(ctx context.Context, err error) {
	l := ss.srv.logger()
	level := slog.LevelWarn
	msg := "handshake failed"
	var ae *authError
	switch {
	case errors.As(err, &ae):
		level, msg = slog.LevelInfo, "authentication failed"
	case ss.req.Protocol == 0 && errors.Is(err, io.EOF):
		level, msg = slog.LevelDebug, "connection closed before any byte"
	}
	ss.logged = true
	if !l.Enabled(ctx, level) {
		return
	}
	var buf [8]slog.Attr
	attrs := append(ss.baseAttrs(buf[:0]), slog.String("err", err.Error()))
	l.LogAttrs(ctx, level, msg, attrs...)
}

// prefixConn is a client connection with bytes already read from it.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the underlying connection when it can.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// splitPrefix returns the bare connection under c and the bytes read ahead
// of it, so that a relay can send those first and keep zero-copy for the
// rest.
func splitPrefix(c net.Conn) (net.Conn, []byte) {
	if pc, ok := c.(*prefixConn); ok {
		p := pc.prefix
		pc.prefix = nil
		return pc.Conn, p
	}
	return c, nil
}

// end is the end of a session that its goroutine served to the last:
// the connection is closed and the Server stops counting it.
func (ss *session) end() {
	ss.conn.Close()
	ss.srv.trackSession(ss, false)
	if ss.cancel != nil {
		ss.cancel()
	}
}

// release drops one of a detached session's two references: its
// goroutine's, after it has unwound, and the relay's, when the relay is
// over. The last one logs the end and ends the session, so the two never
// touch the session at the same time.
func (ss *session) release() {
	if ss.refs.Add(-1) == 0 {
		ss.logEnd(ss.ctx, ss.relayErr)
		ss.end()
	}
}
