package msproxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Listen asks the proxy to accept one connection for the client (BIND). addr is the
// requested bind address, an IPv4 literal and port ("0.0.0.0:0" or "" for any); network is
// "tcp" or "tcp4". The client listens on a local TCP port (on the address its control socket
// uses) and the proxy connects to it once a peer has connected to the proxy's bound port.
//
// The listener's Addr is the address the proxy bound (BIND_ACK; an unspecified address is
// replaced by the proxy's). Accept returns one connection, whose RemoteAddr is the peer from
// BINDINFO; MS Proxy forwards only one connection per bind, so later Accept calls wait until
// the listener is closed. Closing the listener before Accept has returned ends the session;
// afterwards the accepted connection owns the session.
func (d *Dialer) Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	l, err := d.listen(ctx, network, addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: strAddr{network, addr}, Err: err}
	}
	return l, nil
}

func (d *Dialer) listen(ctx context.Context, network, addr string) (*listener, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, fmt.Errorf("%w: network %q", ErrUnsupported, network)
	}
	var req netip.AddrPort
	if addr != "" {
		host, port, err := splitHostPort(ctx, addr)
		if err != nil {
			return nil, err
		}
		ip := netip.IPv4Unspecified()
		if host != "" {
			if ip, err = netip.ParseAddr(host); err != nil || !ip.Unmap().Is4() {
				return nil, fmt.Errorf("%w: bind address %q must be an IPv4 literal", ErrUnsupported, host)
			}
		}
		req = netip.AddrPortFrom(ip.Unmap(), port)
	}
	s, err := d.newSession(ctx)
	if err != nil {
		return nil, err
	}
	l, err := s.bind(ctx, req)
	if err != nil {
		s.close()
		return nil, err
	}
	return l, nil
}

func (s *session) bind(ctx context.Context, req netip.AddrPort) (*listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(s.localIP.String(), "0"))
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			ln.Close()
		}
	}()
	lport := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	if err := s.handshake(ctx, true); err != nil {
		return nil, err
	}
	rep, err := s.exchange(ctx, &Bind{Header: Header{Command: CmdBind}, Requested: req, ListenPort: lport})
	if err != nil {
		return nil, err
	}
	if err := expect(rep, CmdBind, CmdBindAck); err != nil {
		return nil, err
	}
	back := rep.(*BindAck)
	rep, err = s.exchange(ctx, &Bind2{Header: Header{Command: CmdBind2}, BindID: back.BindID, LocalPort: lport})
	if err != nil {
		return nil, err
	}
	if err := expect(rep, CmdBind2, CmdBind2Ack); err != nil {
		return nil, err
	}
	if rep.Hdr().Ack != s.seqSent {
		return nil, fmt.Errorf("%w: BIND2_ACK acknowledges sequence %d, BIND2 was %d", ErrProtocol, rep.Hdr().Ack, s.seqSent)
	}
	if err := s.send(&Connect{Header: Header{Command: CmdListen}, Dest: back.Bound}); err != nil {
		return nil, err
	}
	ok = true
	return &listener{s: s, ln: ln, bindID: back.BindID, bound: s.fixAddr(back.Bound), done: make(chan struct{})}, nil
}

// listener is the client side of a BIND.
type listener struct {
	s      *session
	ln     net.Listener
	bindID [4]byte
	bound  netip.AddrPort

	acceptMu sync.Mutex // one Accept at a time
	mu       sync.Mutex
	accepted bool
	closed   bool
	done     chan struct{}
}

// Addr returns the address the proxy bound for us.
func (l *listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.bound) }

// Close closes the local listening socket and, if no connection was accepted, the session.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	accepted := l.accepted
	l.mu.Unlock()
	err := l.ln.Close()
	if !accepted {
		l.s.close()
	}
	return err
}

// Accept waits for BINDINFO, answers BINDINFO_ACK and accepts the proxy's connection from
// the announced source port.
func (l *listener) Accept() (net.Conn, error) {
	l.acceptMu.Lock()
	defer l.acceptMu.Unlock()
	l.mu.Lock()
	accepted, closed := l.accepted, l.closed
	l.mu.Unlock()
	if closed {
		return nil, l.opErr(net.ErrClosed)
	}
	if accepted {
		<-l.done
		return nil, l.opErr(net.ErrClosed)
	}
	c, err := l.accept()
	if err != nil {
		select {
		case <-l.done:
			err = net.ErrClosed
		default:
		}
		return nil, l.opErr(err)
	}
	return c, nil
}

func (l *listener) opErr(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: err}
}

func (l *listener) accept() (net.Conn, error) {
	s := l.s
	s.mu.Lock()
	info, err := s.awaitBindInfo(l.bindID)
	if err == nil {
		var rep Message
		rep, err = s.exchange(s.ctx, &BindInfoAck{Header: Header{Command: CmdBindInfoAck}, BindID: l.bindID, Endpoints: info.Endpoints})
		_ = rep // Dante reads one more packet of any command
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		if from.Addr().Unmap() != s.proxyIP || from.Port() != info.ServerPort {
			c.Close() // not the proxy's forward
			continue
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		}
		l.accepted = true
		l.mu.Unlock()
		l.ln.Close() // only one forward per bind
		s.mu.Lock()
		s.startKeepalive()
		s.mu.Unlock()
		return &conn{Conn: c, s: s, raddr: net.TCPAddrFromAddrPort(info.Addr)}, nil
	}
}

// awaitBindInfo reads until BINDINFO arrives; the caller holds s.mu. It ends when the
// session is closed.
func (s *session) awaitBindInfo(bindID [4]byte) (*ConnectAck, error) {
	s.uc.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(s.ctx, func() { s.uc.SetReadDeadline(longAgo) })
	defer stop()
	if err := s.ctx.Err(); err != nil {
		return nil, net.ErrClosed
	}
	for {
		rep, err := s.read()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil, net.ErrClosed
			}
			return nil, err
		}
		if rep == nil {
			continue
		}
		switch c := rep.Hdr().Command; {
		case c == CmdBindInfo:
			return rep.(*ConnectAck), nil
		case c == CmdBindAuthFailed || c == CmdConnectAuthFailed || c == CmdAddrInUse || IsRefusal(c):
			return nil, &CommandError{Command: c, Request: CmdListen}
		}
		// anything else is ignored
	}
}
