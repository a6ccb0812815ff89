package socks

import (
	"context"
	"net"
)

// ReplyWriter answers a request in the client's protocol.
type ReplyWriter interface {
	// Reply sends the reply for code with the bound address (the outbound
	// connection's local address for CONNECT, the listening address and
	// then the peer's address for BIND, the relay's address for UDP
	// ASSOCIATE). bound may be nil. BIND replies twice; other commands
	// once. After a failure reply the client connection is closed by the
	// server when the handler returns.
	Reply(code ReplyCode, bound net.Addr) error
	// Replied reports whether Reply has been called.
	Replied() bool
	// Conn returns the client connection, positioned after the request.
	// Bytes the client sent early, after its request, are not lost: they
	// are read first. Use it only after a successful Reply.
	Conn() net.Conn
}

// Handler serves one request: it decides, dials or listens, replies and
// relays. It returns when the session is over.
type Handler interface {
	ServeSOCKS(ctx context.Context, w ReplyWriter, r *Request) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, w ReplyWriter, r *Request) error

// ServeSOCKS calls f(ctx, w, r).
func (f HandlerFunc) ServeSOCKS(ctx context.Context, w ReplyWriter, r *Request) error {
	return f(ctx, w, r)
}

// Middleware wraps a Handler: it can refuse a request (return a
// *ReplyError without calling next), change it, or observe it.
type Middleware func(next Handler) Handler

// Chain returns h wrapped in mw, with mw[0] outermost: a request passes
// mw[0], then mw[1], ..., then h.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// ConnHandler serves a client connection from accept on, before any byte
// of the proxy protocol is read. Returning an error, or returning without
// calling the next handler, closes the connection with no reply, as
// Dante's client-rules do.
type ConnHandler interface {
	ServeConn(ctx context.Context, c net.Conn) error
}

// ConnHandlerFunc adapts a function to a ConnHandler.
type ConnHandlerFunc func(ctx context.Context, c net.Conn) error

// ServeConn calls f(ctx, c).
func (f ConnHandlerFunc) ServeConn(ctx context.Context, c net.Conn) error { return f(ctx, c) }

// ConnMiddleware wraps a ConnHandler: client-rules, per-address limits,
// ident lookups.
type ConnMiddleware func(next ConnHandler) ConnHandler

// ChainConn returns h wrapped in mw, with mw[0] outermost.
func ChainConn(h ConnHandler, mw ...ConnMiddleware) ConnHandler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}
