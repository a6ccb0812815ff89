package socks

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks/auth"
	"github.com/virgilproxy/socks/internal/busypoll"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close.
var ErrServerClosed = errors.New("socks: server closed")

// Defaults for the Server's zero-valued fields.
const (
	DefaultHandshakeTimeout = 30 * time.Second // Dante's timeout.negotiate
	DefaultConnectTimeout   = 30 * time.Second // Dante's timeout.connect
	DefaultMaxHeaderBytes   = 64 << 10         // cap on an HTTP CONNECT request's header block
	DefaultRealm            = "virgil"         // HTTP Proxy-Authenticate realm
	DefaultAddr             = "127.0.0.1:1080" // ListenAndServe's address when Addr is empty
)

// Server is a SOCKS4, SOCKS4a, SOCKS5 and HTTP CONNECT proxy server. Its
// zero value is a working server: SOCKS4/4a/5 on one port, no
// authentication, CONNECT through a net.Dialer. Fields must not change after
// the server starts serving.
//
// A client connection passes the ConnMiddleware chain (client-rules: before
// any protocol byte is read), protocol detection by its first byte, the
// protocol's handshake and authentication, then the Middleware chain
// (socks-rules: per request) and the final Handler.
type Server struct {
	// Addr is the address ListenAndServe listens on; DefaultAddr if empty.
	Addr string

	// Handler serves requests after the Middleware chain. If nil, the
	// built-in handler serves CONNECT by dialing through Dialer, and
	// answers "command not supported" to BIND and UDP ASSOCIATE.
	Handler Handler
	// Middleware wraps Handler per request; Middleware[0] is outermost.
	Middleware []Middleware
	// ConnMiddleware wraps each accepted connection before any protocol
	// byte is read; ConnMiddleware[0] is outermost.
	ConnMiddleware []ConnMiddleware

	// Authenticator, when set, makes username/password authentication
	// mandatory: SOCKS5 clients must offer method 2 (RFC 1929), HTTP
	// clients must send Basic Proxy-Authorization, and SOCKS4 clients,
	// which cannot authenticate, are refused.
	Authenticator auth.PasswordChecker
	// HTTPConnect enables HTTP CONNECT on the same listeners.
	HTTPConnect bool
	// DisableSOCKS4 refuses SOCKS4 and SOCKS4a clients.
	DisableSOCKS4 bool
	// Realm is the HTTP Proxy-Authenticate realm; DefaultRealm if empty.
	Realm string
	// MaxHeaderBytes caps an HTTP CONNECT request's header block;
	// DefaultMaxHeaderBytes if zero.
	MaxHeaderBytes int

	// Dialer makes outbound connections. If nil, a net.Dialer is used. A
	// socks.Dialer here chains to an upstream proxy.
	Dialer proxy.ContextDialer
	// ListenConfig opens the listening sockets for BIND and UDP ASSOCIATE.
	ListenConfig *net.ListenConfig

	// HandshakeTimeout bounds the time from accept to a complete request;
	// DefaultHandshakeTimeout if zero, none if negative.
	HandshakeTimeout time.Duration
	// ConnectTimeout bounds an outbound connect; DefaultConnectTimeout if
	// zero, none if negative.
	ConnectTimeout time.Duration
	// BindTimeout bounds how long a BIND waits for its peer;
	// DefaultBindTimeout if zero, none if negative.
	BindTimeout time.Duration
	// UDPIdleTimeout ends a UDP association with no datagram either way
	// for this long; relay.DefaultUDPIdleTimeout if zero, none if negative.
	UDPIdleTimeout time.Duration

	// UDPBusyPoll, when positive, makes UDP associations poll their
	// sockets without sleeping for this long after each datagram: lower
	// round-trip latency for the price of a busy core and of delays for
	// other sessions while it spins (see relay.UDPOptions.BusyPoll). Off
	// when zero.
	UDPBusyPoll time.Duration
	// BusyPoll, when positive, keeps the Go runtime's network poller
	// polling instead of sleeping for this long after each connection
	// Serve accepts and each small message (under relay.BusyPollChunk) a
	// CONNECT relays, so that the next packet is picked up without waking
	// a thread and its CPU. Where a wake-up is slow, as on virtual
	// machines, that is a large part of a lightly loaded proxy's latency (a
	// quarter of the median on the one we measure on); the price is a
	// spinning thread while such traffic lasts, which suits a proxy with a
	// core of its own and hurts one on cores shared with busy processes
	// (see the package's Performance notes). It is process-wide
	// (package internal/busypoll explains how) and Linux only; Serve logs a
	// warning and goes on without it where it cannot be had. Off when zero.
	BusyPoll time.Duration
	// IdleTimeout ends a relayed session when no byte moved either way for
	// this long; zero means no limit.
	IdleTimeout time.Duration
	// ParkDelay is how long a relayed CONNECT session's direction must be
	// silent before it gives up its goroutine and waits in the relay's
	// shared epoll instance (relay.Options.ParkDelay):
	// relay.DefaultParkDelay (100 ms) if zero, at once if negative.
	// Parking at once saves memory while sessions start in bursts (about
	// 0.4 KiB per idle session in the idle benchmark) and costs CPU for
	// every pause in a session's traffic.
	ParkDelay time.Duration

	// Logger receives one line when a request is answered and one when its
	// session ends, and a line for each refused or malformed connection.
	// If nil, slog.Default() is used; use slog.New(slog.DiscardHandler)
	// for silence.
	Logger *slog.Logger
	// BaseContext, if set, returns the base context for connections
	// accepted on l; otherwise context.Background() is used.
	BaseContext func(l net.Listener) context.Context

	initOnce  sync.Once
	handler   Handler     // Chain(Handler, Middleware...)
	connChain ConnHandler // ChainConn(protocol handler, ConnMiddleware...)

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	sessions   map[*session]struct{}
	inShutdown atomic.Bool

	// closing is done when Close is called. Serve hands it to the sessions
	// it starts (when BaseContext is nil), so that they need no context of
	// their own to be ended by Close: a per-session cancelCtx, with the
	// Done channel and children map its first child makes, was 0.4 KiB of
	// every idle session's heap.
	closing  context.Context
	closeAll context.CancelFunc

	// builtinOnly: no Handler, Middleware or ConnMiddleware of the
	// user's, so a session's goroutine may end before its relay does.
	builtinOnly bool

	deep deepPool
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.closing, s.closeAll = context.WithCancel(context.Background())
		s.builtinOnly = s.Handler == nil && len(s.Middleware) == 0 && len(s.ConnMiddleware) == 0
		h := s.Handler
		if h == nil {
			h = HandlerFunc(s.serveBuiltin)
		}
		s.handler = Chain(h, s.Middleware...)
		s.connChain = ChainConn(ConnHandlerFunc(s.serveProtocol), s.ConnMiddleware...)
	})
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) dialer() proxy.ContextDialer {
	if s.Dialer != nil {
		return s.Dialer
	}
	return defaultDialer
}

// keepAlive turns TCP keepalive on with the kernel's own timing, as Dante
// does: one setsockopt per connection instead of the four that Go's 15 s
// default costs, on a path that opens two connections per request.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}

// defaultDialer is a Server's dialer when Server.Dialer is nil, and a
// Dialer's when Dialer.Forward is nil; it keeps pacing off loopback
// connections (NoLoopbackPacing).
var defaultDialer = &net.Dialer{KeepAliveConfig: keepAlive, Control: NoLoopbackPacing}

// Listen opens a TCP listener for a Server, with keepalive on the accepted
// connections at the kernel's timing (see ListenAndServe).
func Listen(ctx context.Context, network, address string) (net.Listener, error) {
	lc := listenConfig()
	return lc.Listen(ctx, network, address)
}

func durationOr(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// ListenAndServe listens on TCP s.Addr (DefaultAddr if empty) and serves.
// It always returns a non-nil error; after Shutdown or Close,
// ErrServerClosed.
func (s *Server) ListenAndServe() error {
	if s.inShutdown.Load() {
		return ErrServerClosed
	}
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	l, err := Listen(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve accepts connections on l and serves each in its own goroutine. It
// backs off and retries on temporary accept errors such as EMFILE. It
// always returns a non-nil error and closes l; after Shutdown or Close,
// ErrServerClosed.
//
// When the Server has no Handler, Middleware or ConnMiddleware, a CONNECT
// session's goroutine ends once the relay has started (relay.Start), so
// that an idle session holds no goroutine once its directions have been
// silent for ParkDelay; the session still counts in Sessions, Shutdown
// waits for it and Close ends it.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	if !s.trackListener(&l, true) {
		l.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&l, false)
	defer l.Close()

	ctx := s.closing
	if s.BaseContext != nil {
		ctx = s.BaseContext(l)
	}
	if s.BusyPoll > 0 {
		if err := busypoll.Enable(s.BusyPoll); err != nil {
			s.logger().Warn("busy polling is off", "err", err)
		} else {
			defer busypoll.Disable()
		}
	}
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			if isTemporaryAcceptError(err) {
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				s.logger().Warn("accept error; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		busypoll.Kick()
		go s.serveConn(ctx, c, true)
	}
}

func isTemporaryAcceptError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

func (s *Server) trackListener(l *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if s.listeners == nil {
			s.listeners = make(map[*net.Listener]struct{})
		}
		s.listeners[l] = struct{}{}
	} else {
		delete(s.listeners, l)
	}
	return true
}

func (s *Server) trackSession(ss *session, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if s.sessions == nil {
			s.sessions = make(map[*session]struct{})
		}
		s.sessions[ss] = struct{}{}
	} else {
		delete(s.sessions, ss)
	}
	return true
}

func (s *Server) closeListenersLocked() error {
	var err error
	for l := range s.listeners {
		if cerr := (*l).Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	return err
}

// Sessions returns the number of client connections being served: in
// handshake, in a request or relaying.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown stops the server gracefully: it closes the listeners, refuses
// new connections, and waits for the sessions being served to end on their
// own. If ctx ends first, Shutdown returns ctx's error and leaves the
// remaining sessions running; call Close to end them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.inShutdown.Store(true)
	lerr := s.closeListenersLocked()
	s.mu.Unlock()

	const maxPoll = 100 * time.Millisecond
	poll := time.Millisecond
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		if s.Sessions() == 0 {
			s.deep.close()
			return lerr
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			if poll *= 2; poll > maxPoll {
				poll = maxPoll
			}
			timer.Reset(poll)
		}
	}
}

// Close stops the server at once: it closes the listeners and ends every
// session, closing client and outbound connections.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inShutdown.Store(true)
	err := s.closeListenersLocked()
	if s.closeAll != nil {
		s.closeAll()
	}
	for ss := range s.sessions {
		if ss.cancel != nil {
			ss.cancel()
		}
		ss.conn.Close()
	}
	s.deep.close()
	return err
}

// ServeConn serves one client connection on the calling goroutine and
// closes it when done: ConnMiddleware, protocol detection, handshake,
// Middleware and Handler. ctx bounds the whole session. The returned error
// says why the session ended (nil for a normal end).
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	return s.serveConn(ctx, c, false)
}

// serveConn is ServeConn. With detachable (Serve's sessions), a CONNECT
// session may leave its goroutine once the relay has started, when
// nothing of the caller's runs around the built-in handler (see
// relayDetached); serveConn then returns nil at once and the relay ends
// the session.
func (s *Server) serveConn(ctx context.Context, c net.Conn, detachable bool) error {
	s.init()
	ss := &session{srv: s, conn: c}
	ss.req.Start = time.Now()
	ss.req.Client = c.RemoteAddr()
	ss.req.Local = c.LocalAddr()
	ss.req.Traffic = &ss.traffic
	ss.detachable = detachable && s.builtinOnly
	if ctx.Done() != s.closing.Done() {
		// A context of the caller's (or from BaseContext): Close must be
		// able to end the session too.
		ctx, ss.cancel = context.WithCancel(ctx)
	}
	if !s.trackSession(ss, true) {
		c.Close()
		if ss.cancel != nil {
			ss.cancel()
		}
		return ErrServerClosed
	}
	ctx = context.WithValue(ctx, sessionKey{}, ss)
	detached := false
	defer func() {
		if detached {
			ss.release()
			return
		}
		ss.end()
	}()
	err := s.connChain.ServeConn(ctx, c)
	if err == errDetached {
		detached = true
		return nil
	}
	if err != nil && !ss.logged {
		s.logger().Info("connection refused before handshake", "client", addrString(ss.req.Client), "err", err)
	}
	return err
}

type sessionKey struct{}

// addrString formats a possibly nil net.Addr.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// bufPool holds the readers that handshakes parse from. A reader is taken
// at accept and given back before the session's relay starts, so an idle
// session holds no buffer.
var bufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
