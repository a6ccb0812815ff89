package socks

import (
	"context"
	"errors"
	"net"

	"github.com/virgilproxy/socks/relay"
)

// serveBuiltin is the default final Handler.
func (s *Server) serveBuiltin(ctx context.Context, w ReplyWriter, r *Request) error {
	switch r.Command {
	case CommandConnect:
		return s.serveConnect(ctx, w, r)
	case CommandBind:
		return s.serveBind(ctx, w, r)
	case CommandAssociate:
		return s.serveAssociate(ctx, w, r)
	}
	return &ReplyError{Code: ReplyCommandNotSupported, Err: errors.New(r.Command.String() + " is not supported")}
}

// serveConnect dials the destination, replies with the outbound
// connection's local address, and relays until the session ends.
func (s *Server) serveConnect(ctx context.Context, w ReplyWriter, r *Request) error {
	target, err := s.dial(ctx, r)
	if err != nil {
		return &ReplyError{Code: ReplyCodeFor(err), Err: err}
	}
	if err := w.Reply(ReplySucceeded, target.LocalAddr()); err != nil {
		target.Close()
		return err
	}
	if ss, ok := w.(*session); ok && ss.detachable && s.relayDetached(ctx, ss, target) {
		return errDetached
	}
	defer target.Close()
	return s.relay(ctx, w.Conn(), target, r.Traffic)
}

// errDetached travels up a session's goroutine from serveConnect when the
// relay has taken the session over (relayDetached).
var errDetached = errors.New("socks: session handed to the relay")

// relayDetached starts the relay with relay.Start, which holds no
// goroutine while both sides are silent, and lets the session's goroutine
// end: an idle session then costs no goroutine and no stack (4 KiB, the
// most of what it held). Only for Serve's sessions with nothing of the
// user's around the built-in handler, since a Handler, Middleware or
// ConnMiddleware may act after the relay returns, and only on bare TCP
// connections (relay.Start's terms). It reports false when the relay was
// not started; the caller relays itself.
func (s *Server) relayDetached(ctx context.Context, ss *session, target net.Conn) bool {
	client := ss.Conn()
	t := ss.req.Traffic
	ss.ctx = ctx
	ss.refs.Store(2)
	started := relay.Start(ctx, client, target, relay.Options{IdleTimeout: s.IdleTimeout, ParkDelay: s.ParkDelay}, func(res relay.Result, err error) {
		t.FromClient.Add(res.ClientToTarget)
		t.ToClient.Add(res.TargetToClient)
		target.Close()
		ss.relayErr = err
		ss.release()
	})
	if !started {
		ss.refs.Store(0)
	}
	return started
}

// dial connects to r.Dest through the server's Dialer within the connect
// timeout, on a goroutine of the server's deepPool, so that the session's
// goroutine does not keep the stack the dial grows.
func (s *Server) dial(ctx context.Context, r *Request) (c net.Conn, err error) {
	s.deep.do(func() { c, err = s.dialNow(ctx, r) })
	return c, err
}

// dialNow dials on the calling goroutine. The timeout's context ends with
// the dial, so a long session does not carry its timer.
func (s *Server) dialNow(ctx context.Context, r *Request) (net.Conn, error) {
	ctx = context.WithValue(ctx, requestKey{}, r)
	if t := durationOr(s.ConnectTimeout, DefaultConnectTimeout); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	return s.dialer().DialContext(ctx, "tcp", r.Dest.String())
}

// relay moves bytes between client and target until the session ends,
// sending first any bytes the client sent ahead of the reply, and counts
// them in t. A normal end (both sides closed) returns nil.
func (s *Server) relay(ctx context.Context, client, target net.Conn, t *Traffic) error {
	client, early := splitPrefix(client)
	if len(early) > 0 {
		n, err := target.Write(early)
		t.FromClient.Add(int64(n))
		if err != nil {
			return err
		}
	}
	res, err := relay.Pipe(ctx, client, target, relay.Options{IdleTimeout: s.IdleTimeout, ParkIdle: true, ParkDelay: s.ParkDelay})
	t.FromClient.Add(res.ClientToTarget)
	t.ToClient.Add(res.TargetToClient)
	return err
}

type requestKey struct{}

// RequestFromContext returns the request on whose behalf a Server's
// Dialer is dialing, so that a route table or a chaining Dialer can choose
// by the client's identity or address.
func RequestFromContext(ctx context.Context) (*Request, bool) {
	r, ok := ctx.Value(requestKey{}).(*Request)
	return r, ok
}
