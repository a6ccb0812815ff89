package msproxy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/proxy"
)

// DefaultPort is the conventional UDP control port of MS Proxy v2.
const DefaultPort = 1745

// Defaults of the Dialer's zero fields.
const (
	DefaultRetries       = 3
	DefaultRetryInterval = 500 * time.Millisecond
	DefaultKeepAlive     = 6 * time.Minute
	maxRetryInterval     = 8 * time.Second
	applicationName      = "TELNET.EXE"
)

// Dialer is an MS Proxy v2 client. Each Dial or Listen opens its own UDP control socket to
// Server (one msproxy session per proxied connection, as in Dante), which lives until the
// returned connection (or a listener that never accepted) is closed; Close sends SESSIONEND.
//
// Control datagrams that get no valid answer are resent unchanged (same sequence number)
// after RetryInterval, doubling each time up to 8s, Retries times; then the dial fails with
// ErrTimeout. Contexts and their deadlines bound every step.
//
// Errors are *net.OpError values. Op is "proxyconnect" when the proxy could not be reached
// or broke the protocol (ErrTimeout, ErrProtocol, network errors) and "dial" (or "listen")
// when the proxy answered with a failure command (a *CommandError). The zero Dialer is not
// usable: Server must be set.
type Dialer struct {
	// Server is host:port of the proxy's UDP control port; the port defaults to 1745.
	Server string
	// User is sent in HELLO. Empty means the environment's SOCKS_USERNAME, SOCKS_USER or
	// SOCKS5_USER (as Dante), else the OS user name.
	User string
	// Forward dials the TCP data connections to the proxy; nil means a net.Dialer. With a
	// net.Dialer the client binds its data socket first and reports the local port in
	// CONNECT, as Dante does; with Forward set it reports port 0.
	Forward proxy.ContextDialer
	// Retries is the number of retransmissions of a control datagram; 0 means 3, negative
	// means none.
	Retries int
	// RetryInterval is the first wait for an answer; 0 means 500ms.
	RetryInterval time.Duration
	// KeepAlive is the interval of the keepalive HELLO on established sessions; 0 means six
	// minutes as in Dante, negative turns keepalives off.
	KeepAlive time.Duration
}

var (
	_ proxy.Dialer        = (*Dialer)(nil)
	_ proxy.ContextDialer = (*Dialer)(nil)
)

// Dial connects to addr through the proxy; see DialContext.
func (d *Dialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// DialContext connects to addr ("tcp" or "tcp4"; IPv4 literal or host name, which the proxy
// resolves with RESOLVE) through the proxy. The returned connection's RemoteAddr is the
// destination; closing it ends the msproxy session with SESSIONEND.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, op, err := d.dial(ctx, network, addr)
	if err != nil {
		return nil, &net.OpError{Op: op, Net: network, Addr: strAddr{network, addr}, Err: err}
	}
	return c, nil
}

func (d *Dialer) dial(ctx context.Context, network, addr string) (net.Conn, string, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, "dial", fmt.Errorf("%w: network %q", ErrUnsupported, network)
	}
	host, port, err := splitHostPort(ctx, addr)
	if err != nil {
		return nil, "dial", err
	}
	s, err := d.newSession(ctx)
	if err != nil {
		return nil, "proxyconnect", err
	}
	c, op, err := s.connect(ctx, host, port)
	if err != nil {
		s.close()
		return nil, op, err
	}
	return c, "", nil
}

func splitHostPort(ctx context.Context, addr string) (string, uint16, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "tcp", ps)
	if err != nil {
		return "", 0, err
	}
	return host, uint16(p), nil
}

// strAddr is a net.Addr for an unresolved address.
type strAddr struct{ net, s string }

func (a strAddr) Network() string { return a.net }
func (a strAddr) String() string  { return a.s }

// session is the client side of one msproxy control channel.
type session struct {
	uc       *net.UDPConn
	proxyIP  netip.Addr
	localIP  netip.Addr
	forward  proxy.ContextDialer
	user     string
	retries  int
	interval time.Duration
	every    time.Duration

	ctx    context.Context // canceled by close: aborts keepalives and Accept
	cancel context.CancelFunc

	mu       sync.Mutex // serializes exchanges and guards everything below
	clientID [4]byte
	serverID [4]byte
	haveSID  bool
	seqSent  uint8
	counting bool // sequence numbers increase (the server's ack reached 2)
	seqRecv  uint8
	received bool
	closed   bool
	timer    *time.Timer
	out      []byte
	in       []byte
}

func (d *Dialer) newSession(ctx context.Context) (*session, error) {
	server := d.Server
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, strconv.Itoa(DefaultPort))
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, err
	}
	uc := c.(*net.UDPConn)
	s := &session{
		uc:       uc,
		proxyIP:  uc.RemoteAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(),
		localIP:  uc.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(),
		forward:  d.Forward,
		user:     d.User,
		retries:  d.Retries,
		interval: d.RetryInterval,
		every:    d.KeepAlive,
		out:      make([]byte, 0, MaxPacketLen),
		in:       make([]byte, MaxPacketLen+1),
	}
	if s.retries == 0 {
		s.retries = DefaultRetries
	} else if s.retries < 0 {
		s.retries = 0
	}
	if s.interval <= 0 {
		s.interval = DefaultRetryInterval
	}
	if s.every == 0 {
		s.every = DefaultKeepAlive
	}
	if s.user == "" {
		s.user = defaultUser()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func defaultUser() string {
	for _, k := range []string{"SOCKS_USERNAME", "SOCKS_USER", "SOCKS5_USER"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// prepare fills m's header per Dante's rules and encodes it into s.out.
func (s *session) prepare(m Message) ([]byte, error) {
	h := m.Hdr()
	h.ClientID, h.Version, h.ServerID, h.Ack = s.clientID, Version, s.serverID, s.seqRecv
	// Dante: the sequence stays 0 while the server's ack is below 2, then counts up.
	if s.counting || (s.received && s.seqRecv >= 2) {
		s.counting = true
		s.seqSent++
	}
	h.Seq = s.seqSent
	return m.Append(s.out[:0])
}

// send sends a packet that gets no answer (CONNECTED, LISTEN, SESSIONEND).
func (s *session) send(m Message) error {
	p, err := s.prepare(m)
	if err != nil {
		return err
	}
	_, err = s.uc.Write(p)
	return err
}

var longAgo = time.Unix(1, 0)

// exchange sends m and returns the first new answer, resending m unchanged when none
// arrives in time.
func (s *session) exchange(ctx context.Context, m Message) (Message, error) {
	p, err := s.prepare(m)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.uc.SetReadDeadline(longAgo) })
	defer stop()
	wait := s.interval
	for attempt := 0; attempt <= s.retries; attempt++ {
		if _, err := s.uc.Write(p); err != nil {
			return nil, ctxErr(ctx, err)
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		s.uc.SetReadDeadline(deadline)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for {
			rep, err := s.read()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
					if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
						return nil, context.DeadlineExceeded
					}
					break // resend
				}
				return nil, ctxErr(ctx, err)
			}
			if rep != nil {
				return rep, nil
			}
		}
		wait = min(2*wait, maxRetryInterval)
	}
	return nil, ErrTimeout
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// read reads one datagram. It returns nil, nil for junk and for duplicates: a packet is new
// when it is the first, or when its sequence is after the last one received (serial
// arithmetic, so it survives the 8-bit wrap).
func (s *session) read() (Message, error) {
	n, err := s.uc.Read(s.in)
	if err != nil {
		return nil, err
	}
	if n > MaxPacketLen {
		return nil, nil
	}
	rep, err := DecodeReply(s.in[:n])
	if err != nil {
		return nil, nil
	}
	h := rep.Hdr()
	if s.haveSID && h.ServerID != s.serverID {
		return nil, fmt.Errorf("%w: server id changed from %x to %x", ErrProtocol, s.serverID, h.ServerID)
	}
	if s.received && int8(h.Seq-s.seqRecv) <= 0 {
		return nil, nil // duplicate or stale
	}
	s.received, s.seqRecv = true, h.Seq
	return rep, nil
}

func expect(rep Message, req, want uint16) error {
	if c := rep.Hdr().Command; c != want {
		return &CommandError{Command: c, Request: req}
	}
	return nil
}

// handshake sends packet 1 and packet 2 (both HELLO).
func (s *session) handshake(ctx context.Context, bind bool) error {
	hello := func() *Hello {
		m := &Hello{Header: Header{Command: CmdHello}, User: s.user, Application: applicationName}
		if bind {
			m.Params = BindHelloParams()
		}
		return m
	}
	s.clientID = FirstClientID
	rep, err := s.exchange(ctx, hello())
	if err != nil {
		return err
	}
	ack, ok := rep.(*HelloAck)
	if !ok {
		return &CommandError{Command: rep.Hdr().Command, Request: CmdHello}
	}
	s.serverID, s.haveSID = ack.ServerID, true
	if _, err := rand.Read(s.clientID[:]); err != nil {
		return err
	}
	if rep, err = s.exchange(ctx, hello()); err != nil {
		return err
	}
	return expect(rep, CmdHello, CmdUserInfoAck)
}

func (s *session) connect(ctx context.Context, host string, port uint16) (net.Conn, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.handshake(ctx, false); err != nil {
		return nil, opOf(err), err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		rep, err := s.exchange(ctx, &Resolve{Header: Header{Command: CmdResolve}, Name: host})
		if err != nil {
			return nil, opOf(err), err
		}
		if err := expect(rep, CmdResolve, CmdResolveAck); err != nil {
			return nil, "dial", err
		}
		ip = rep.(*ResolveAck).Addr
		if ip.IsUnspecified() {
			return nil, "dial", &net.DNSError{Err: "no such host (proxy's RESOLVE)", Name: host, IsNotFound: true}
		}
	}
	ip = ip.Unmap()
	if !ip.Is4() {
		return nil, "dial", fmt.Errorf("%w: IPv6 destination %v", ErrUnsupported, ip)
	}
	dest := netip.AddrPortFrom(ip, port)

	var localPort uint16
	if s.forward == nil {
		localPort = s.pickPort()
	}
	rep, err := s.exchange(ctx, &Connect{Header: Header{Command: CmdConnect}, Dest: dest, LocalPort: localPort})
	if err != nil {
		return nil, opOf(err), err
	}
	if err := expect(rep, CmdConnect, CmdConnectAck); err != nil {
		return nil, "dial", err
	}
	fwd := s.fixAddr(rep.(*ConnectAck).Addr)
	tc, err := s.dialData(ctx, fwd, localPort)
	if err != nil {
		return nil, "proxyconnect", err
	}
	if err := s.send(&Plain{Header{Command: CmdConnected}}); err != nil {
		tc.Close()
		return nil, "proxyconnect", err
	}
	s.startKeepalive()
	return &conn{Conn: tc, s: s, raddr: net.TCPAddrFromAddrPort(dest)}, "", nil
}

func opOf(err error) string {
	var ce *CommandError
	if errors.As(err, &ce) {
		return "dial"
	}
	return "proxyconnect"
}

// fixAddr replaces an unspecified address announced by the proxy with the proxy's own.
func (s *session) fixAddr(a netip.AddrPort) netip.AddrPort {
	if !a.Addr().IsValid() || a.Addr().IsUnspecified() {
		return netip.AddrPortFrom(s.proxyIP, a.Port())
	}
	return a
}

// pickPort finds a free local TCP port for the data connection, which CONNECT announces
// before the connection is made (as Dante binds its socket first). 0 when none is found.
func (s *session) pickPort() uint16 {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.localIP, 0)))
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort().Port()
}

func (s *session) dialData(ctx context.Context, to netip.AddrPort, localPort uint16) (net.Conn, error) {
	if s.forward != nil {
		return s.forward.DialContext(ctx, "tcp", to.String())
	}
	var nd net.Dialer
	if localPort != 0 {
		nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.localIP, localPort))
	}
	c, err := nd.DialContext(ctx, "tcp", to.String())
	if err != nil && localPort != 0 && errors.Is(err, syscall.EADDRINUSE) {
		nd.LocalAddr = nil
		c, err = nd.DialContext(ctx, "tcp", to.String())
	}
	return c, err
}

// startKeepalive arms the keepalive timer; the caller holds s.mu.
func (s *session) startKeepalive() {
	if s.every > 0 && !s.closed {
		s.timer = time.AfterFunc(s.every, s.keepaliveTick)
	}
}

// keepaliveTick sends HELLO with an all-zero payload and reads one answer (any command).
func (s *session) keepaliveTick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	// Errors are not fatal: a lost keepalive is retried at the next tick.
	s.exchange(s.ctx, &Hello{Header: Header{Command: CmdHello}})
	if !s.closed {
		s.timer.Reset(s.every)
	}
}

// close ends the session: it stops the keepalive, sends SESSIONEND and closes the socket.
func (s *session) close() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.haveSID {
		s.send(&Plain{Header{Command: CmdSessionEnd}})
	}
	s.uc.Close()
}

// conn is a proxied TCP connection; Close ends its msproxy session.
type conn struct {
	net.Conn
	s     *session
	raddr net.Addr
	once  sync.Once
}

// RemoteAddr returns the destination (CONNECT) or the peer announced in BINDINFO (BIND).
func (c *conn) RemoteAddr() net.Addr { return c.raddr }

// Close closes the data connection and sends SESSIONEND.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.s.close)
	return err
}

// CloseWrite half-closes the data connection when the underlying one supports it.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("%w: CloseWrite on %T", ErrUnsupported, c.Conn)
}
