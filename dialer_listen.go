package socks

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/virgilproxy/socks/socks5"
)

// Listen asks the proxy to listen for one incoming TCP connection (BIND)
// and returns a net.Listener for it. Addr is the address the proxy
// listens on, from its first reply: give it to the peer. Accept waits for
// the proxy's second reply and returns the relayed connection, whose
// RemoteAddr is the peer's address. address names the peer the
// application expects; the proxy refuses others. "0.0.0.0:0" (or "") lets
// any peer connect. SOCKS4, SOCKS4a and SOCKS5 proxies support BIND; HTTP
// CONNECT proxies do not.
func (d *Dialer) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, d.opError(network, nil, net.UnknownNetworkError(network))
	}
	if address == "" {
		address = "0.0.0.0:0"
	}
	peer, err := ParseAddr(address)
	if err != nil {
		return nil, d.opError(network, nil, err)
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	if d.Protocol == ProtocolMSProxy {
		ln, err := d.msproxy().Listen(ctx, network, address)
		return ln, msproxyError(err)
	}
	conn, bound, err := d.request(ctx, network, byte(socks5.CommandBind), peer)
	if err != nil {
		return nil, err
	}
	if bound.IP.IsValid() && bound.IP.IsUnspecified() {
		// "Use the proxy's address" (SOCKS4's convention, and common in SOCKS5).
		if ap, ok := addrPortOf(conn.RemoteAddr()); ok {
			bound.IP = ap.Addr().Unmap()
		}
	}
	return &bindListener{d: d, network: network, conn: conn, bound: bound, done: make(chan struct{})}, nil
}

// bindListener is the client side of a BIND.
type bindListener struct {
	d       *Dialer
	network string
	conn    net.Conn
	bound   Addr

	mu       sync.Mutex
	accepted bool
	done     chan struct{}
	once     sync.Once
}

// Accept waits for the peer and returns the relayed connection. A BIND
// carries one connection: a second Accept waits until Close.
func (l *bindListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.accepted {
		l.mu.Unlock()
		<-l.done
		return nil, l.opError(net.ErrClosed)
	}
	l.accepted = true
	defer l.mu.Unlock()

	br := bufPool.Get().(*bufio.Reader)
	br.Reset(l.conn)
	defer func() {
		br.Reset(nil)
		bufPool.Put(br)
	}()
	var peer Addr
	var err error
	switch l.d.Protocol {
	case ProtocolSOCKS4, ProtocolSOCKS4a:
		peer, err = readSOCKS4Reply(br)
	default:
		peer, err = readSOCKS5Reply(br)
	}
	if err != nil {
		select {
		case <-l.done:
			err = net.ErrClosed
		default:
		}
		return nil, l.opError(err)
	}
	conn := l.conn
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		conn = &prefixConn{Conn: conn, prefix: append([]byte(nil), p...)}
	}
	return &peerConn{Conn: conn, remote: peer}, nil
}

func (l *bindListener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: l.network, Source: proxyAddr(l.d.ProxyAddr), Addr: l.bound, Err: err}
}

// Close ends the BIND. It does not close a connection Accept returned.
func (l *bindListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		if !l.accepted {
			err = l.conn.Close()
		} else {
			// Unblock a pending Accept; the accepted conn owns the socket.
			l.conn.SetReadDeadline(time.Unix(1, 0))
		}
	})
	return err
}

// Addr returns the address the proxy listens on for the peer.
func (l *bindListener) Addr() net.Addr { return l.bound }

// peerConn is a relayed connection that reports the real peer.
type peerConn struct {
	net.Conn
	remote Addr
}

func (c *peerConn) RemoteAddr() net.Addr { return c.remote }

// CloseWrite half-closes the connection to the proxy.
func (c *peerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// ListenPacket opens a UDP association through a SOCKS5 proxy (UDP
// ASSOCIATE) and returns it as a net.PacketConn. WriteTo frames each
// datagram with the RFC 1928 header (a *net.UDPAddr or a socks.Addr with
// a host name as the destination); ReadFrom removes it and reports the
// real source. address is the local UDP address to send from ("" picks
// the address of the control connection and a free port). The
// association lives as long as its TCP control connection: when the proxy
// closes that, the PacketConn closes itself. Deadlines apply to the UDP
// socket.
func (d *Dialer) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, d.opError(network, nil, net.UnknownNetworkError(network))
	}
	if d.Protocol != ProtocolSOCKS5 && d.Protocol != 0 {
		return nil, d.opError(network, nil, errors.New("UDP ASSOCIATE needs a SOCKS5 proxy"))
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	c, err := d.connectProxy(ctx)
	if err != nil {
		return nil, d.opError(network, nil, err)
	}
	if address == "" {
		ip := localIP(c.LocalAddr())
		address = netip.AddrPortFrom(ip, 0).String()
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, network, address)
	if err != nil {
		c.Close()
		return nil, d.opError(network, nil, err)
	}
	udp := pc.(*net.UDPConn)
	local := AddrFromAddrPort(udp.LocalAddr().(*net.UDPAddr).AddrPort())
	if local.IP.IsUnspecified() {
		local.IP = localIP(c.LocalAddr())
	}
	conn, relayAddr, err := d.handshake(ctx, c, byte(socks5.CommandUDPAssociate), local)
	if err != nil {
		c.Close()
		udp.Close()
		return nil, d.opError(network, local, err)
	}
	if !relayAddr.IP.IsValid() || relayAddr.IP.IsUnspecified() {
		if ap, ok := addrPortOf(c.RemoteAddr()); ok {
			relayAddr.IP = ap.Addr().Unmap()
		}
	}
	ap, ok := relayAddr.AddrPort()
	if !ok {
		conn.Close()
		udp.Close()
		return nil, d.opError(network, local, errors.New("the proxy named its UDP relay by a host name"))
	}
	p := &associationConn{udp: udp, control: conn, relay: ap, closed: make(chan struct{})}
	go p.watchControl()
	return p, nil
}

// associationConn is the client side of a UDP association.
type associationConn struct {
	udp     *net.UDPConn
	control net.Conn
	relay   netip.AddrPort
	closed  chan struct{}
	once    sync.Once
	rmu     sync.Mutex
	rbuf    []byte
	wmu     sync.Mutex
	wbuf    []byte
}

// LocalAddr returns the local UDP address datagrams leave from.
func (p *associationConn) LocalAddr() net.Addr { return p.udp.LocalAddr() }

// SetDeadline sets the read and write deadlines of the UDP socket.
func (p *associationConn) SetDeadline(t time.Time) error { return p.udp.SetDeadline(t) }

// SetReadDeadline sets the UDP socket's read deadline.
func (p *associationConn) SetReadDeadline(t time.Time) error { return p.udp.SetReadDeadline(t) }

// SetWriteDeadline sets the UDP socket's write deadline.
func (p *associationConn) SetWriteDeadline(t time.Time) error { return p.udp.SetWriteDeadline(t) }

// watchControl closes the association when the proxy ends the control
// connection.
func (p *associationConn) watchControl() {
	var b [64]byte
	for {
		if _, err := p.control.Read(b[:]); err != nil {
			p.Close()
			return
		}
	}
}

// ReadFrom reads one datagram from the relay and returns its payload and
// real source. Fragmented datagrams and datagrams from anywhere but the
// relay are skipped.
func (p *associationConn) ReadFrom(b []byte) (int, net.Addr, error) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if p.rbuf == nil {
		p.rbuf = make([]byte, 65535)
	}
	buf := p.rbuf
	for {
		n, from, err := p.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, nil, err
		}
		if from.Addr().Unmap() != p.relay.Addr().Unmap() || from.Port() != p.relay.Port() {
			continue
		}
		dg, err := socks5.ParseDatagram(buf[:n])
		if err != nil || dg.Frag != 0 {
			continue
		}
		n = copy(b, dg.Data)
		if ap := dg.Addr.AddrPort(); dg.Addr.Name == "" {
			return n, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())), nil
		}
		return n, destAddr(dg.Addr.Name, netip.Addr{}, dg.Addr.Port), nil
	}
}

// WriteTo sends b to addr through the relay.
func (p *associationConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var dest socks5.Addr
	if ap, ok := addrPortOf(addr); ok {
		dest = socks5.AddrFromAddrPort(ap)
	} else if a, ok := addr.(Addr); ok {
		dest = socks5.Addr{Name: a.Name, IP: a.IP, Port: a.Port}
	} else {
		parsed, err := socks5.ParseAddr(addr.String())
		if err != nil {
			return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: err}
		}
		dest = parsed
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	buf, err := socks5.AppendDatagramHeader(p.wbuf[:0], 0, dest)
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: err}
	}
	buf = append(buf, b...)
	p.wbuf = buf[:0]
	if _, err := p.udp.WriteToUDPAddrPort(buf, p.relay); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close ends the association: the UDP socket and the control connection.
func (p *associationConn) Close() error {
	var err error
	p.once.Do(func() {
		close(p.closed)
		p.control.Close()
		err = p.udp.Close()
	})
	return err
}

var _ net.PacketConn = (*associationConn)(nil)
