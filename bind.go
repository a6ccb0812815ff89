package socks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

// DefaultBindTimeout is how long a BIND waits for its peer when
// Server.BindTimeout is zero.
const DefaultBindTimeout = 2 * time.Minute

func (s *Server) listenConfig() *net.ListenConfig {
	if s.ListenConfig != nil {
		return s.ListenConfig
	}
	return &net.ListenConfig{Control: NoLoopbackPacing}
}

// localIP returns the IP of a connection's local address: where the
// client reached us, which is the address a BIND or UDP relay socket
// should use so that it works on multi-homed hosts.
func localIP(a net.Addr) netip.Addr {
	if ap, ok := addrPortOf(a); ok {
		return ap.Addr().Unmap()
	}
	return netip.IPv4Unspecified()
}

// serveBind listens for one incoming connection: the first reply carries
// the listening address, the second the peer's, then the two are
// relayed. When the request names a peer IP only that IP may connect
// (others are refused and the wait goes on); when it names 0.0.0.0 any
// peer may, and the requested port is bound if it is free, as Dante does.
func (s *Server) serveBind(ctx context.Context, w ReplyWriter, r *Request) error {
	expected := r.Dest.IP
	port := uint16(0)
	if !expected.IsValid() || expected.IsUnspecified() {
		expected = netip.Addr{}
		port = r.Dest.Port
	}
	ip := localIP(r.Local)
	ln, err := s.listenConfig().Listen(ctx, "tcp", netip.AddrPortFrom(ip, port).String())
	if err != nil && port != 0 {
		ln, err = s.listenConfig().Listen(ctx, "tcp", netip.AddrPortFrom(ip, 0).String())
	}
	if err != nil {
		return &ReplyError{Code: ReplyCodeFor(err), Err: err}
	}
	defer ln.Close()
	if err := w.Reply(ReplySucceeded, ln.Addr()); err != nil {
		return err
	}

	client := w.Conn()
	timeout := durationOr(s.BindTimeout, DefaultBindTimeout)
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if timeout > 0 {
		bctx, cancel = context.WithTimeout(bctx, timeout)
		defer cancel()
	}
	stopListen := context.AfterFunc(bctx, func() { ln.Close() })
	defer stopListen()

	// While waiting, watch the control connection: a client that leaves
	// ends the wait. A byte it sends early is kept for the relay.
	watch := make(chan error, 1)
	var early [1]byte
	var earlyN int
	go func() {
		n, err := client.Read(early[:])
		earlyN = n
		if err == nil {
			// Data for the peer: keep waiting for it (the byte is kept).
			watch <- errEarlyData
			return
		}
		watch <- err
		cancel() // the client left or the deadline of stopWatch fired
	}()
	stopWatch := func() error {
		client.SetReadDeadline(time.Unix(1, 0))
		err := <-watch
		client.SetReadDeadline(time.Time{})
		return err
	}

	peer, err := s.acceptPeer(ln, expected, r)
	if err != nil {
		werr := stopWatch()
		switch {
		case werr != nil && !errors.Is(werr, os.ErrDeadlineExceeded) && !errors.Is(werr, errEarlyData):
			return fmt.Errorf("client left while waiting for the BIND peer: %w", werr)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(bctx.Err(), context.DeadlineExceeded):
			return &ReplyError{Code: ReplyTTLExpired, Err: fmt.Errorf("no peer connected within %v", timeout)}
		}
		return &ReplyError{Code: ReplyGeneralFailure, Err: err}
	}
	defer peer.Close()
	if werr := stopWatch(); werr != nil && !errors.Is(werr, os.ErrDeadlineExceeded) && !errors.Is(werr, errEarlyData) {
		return fmt.Errorf("client left while waiting for the BIND peer: %w", werr)
	}
	if err := w.Reply(ReplySucceeded, peer.RemoteAddr()); err != nil {
		return err
	}
	if earlyN > 0 {
		client = &prefixConn{Conn: client, prefix: append([]byte(nil), early[:earlyN]...)}
	}
	return s.relay(ctx, client, peer, r.Traffic)
}

var errEarlyData = errors.New("client sent data before the BIND peer connected")

// acceptPeer accepts connections on ln until one comes from the expected
// IP (any IP when expected is invalid) and passes the request's
// PeerFilter; others are closed and logged.
func (s *Server) acceptPeer(ln net.Listener, expected netip.Addr, r *Request) (net.Conn, error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil, err
		}
		ap, _ := addrPortOf(c.RemoteAddr())
		peer := AddrFromAddrPort(ap)
		switch {
		case expected.IsValid() && peer.IP != expected:
			s.logger().Warn("BIND peer refused: not the expected address", "client", addrString(r.Client), "peer", peer.String(), "expected", expected.String())
		case r.PeerFilter != nil && !r.PeerFilter(Inbound, peer):
			s.logger().Info("BIND peer refused by policy", "client", addrString(r.Client), "peer", peer.String())
		default:
			return c, nil
		}
		c.Close()
	}
}
