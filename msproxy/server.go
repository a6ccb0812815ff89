package msproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/proxy"

	"github.com/virgilproxy/socks/internal/pacing"
)

// Defaults of the Server's zero fields.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultSessionTimeout = 15 * time.Minute
	DefaultMaxSessions    = 4096
	sessionGrace          = 30 * time.Second // how long a session outlives its last relay
	maxQueued             = 32               // datagrams waiting per session; more are dropped
)

// Server answers MS Proxy v2 clients on a UDP control socket and relays their connections
// through Dialer, following DANTE.md section 2.5. A session is keyed by the client's UDP
// source address; it has a random server id and its own sequence counter (0, 1, 2, ...), and
// it ends on SESSIONEND, after SessionTimeout without control traffic while nothing is
// relayed, or shortly after its last relay ends.
//
// Requests of a session are handled one at a time in arrival order. A datagram identical in
// client id, server id, ack, sequence and command to the last request handled is a
// retransmission: the Server resends its previous answer (if that request had one) and does
// not act again. BINDINFO is retransmitted until BINDINFO_ACK arrives.
//
// The zero Server is ready to use. Fields must not change after Serve is called.
type Server struct {
	// Dialer makes the outbound connections; nil means a net.Dialer.
	Dialer proxy.ContextDialer
	// ListenConfig creates the per-connection forwarding listeners and BIND listeners; nil
	// means the zero net.ListenConfig.
	ListenConfig *net.ListenConfig
	// Resolver answers RESOLVE (IPv4 only); nil means net.DefaultResolver. A name that does
	// not resolve is answered with 0.0.0.0, which a Dante client then fails to connect to.
	Resolver *net.Resolver
	// Logger receives session events; nil discards them.
	Logger *slog.Logger
	// ConnectTimeout bounds the outbound dial, the resolution of a name, and the wait for the
	// client's data connection; 0 means 30s.
	ConnectTimeout time.Duration
	// SessionTimeout ends a session without control traffic and without active relay or bind;
	// 0 means 15 minutes (longer than the clients' 6-minute keepalive).
	SessionTimeout time.Duration
	// MaxSessions caps concurrent sessions; 0 means 4096. HELLOs beyond it are dropped.
	MaxSessions int
	// Retries and RetryInterval govern BINDINFO retransmission (defaults 3 and 500ms, doubling).
	Retries       int
	RetryInterval time.Duration

	mu       sync.Mutex
	closed   bool
	pcs      map[net.PacketConn]struct{}
	sessions map[sessKey]*srvSession
	wg       sync.WaitGroup

	// test hooks
	observe func(h Header)                // sees every request decoded
	answer  func(h Header) (uint16, bool) // replaces the answer with a header-only command
}

type sessKey struct {
	pc     net.PacketConn
	remote string
}

type reqKey struct {
	clientID, serverID [4]byte
	ack, seq           uint8
	cmd                uint16
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) dialer() proxy.ContextDialer {
	if s.Dialer != nil {
		return s.Dialer
	}
	return defaultDialer
}

// defaultDialer is a Server's when its Dialer is nil; like
// socks.NoLoopbackPacing, it keeps pacing off loopback connections.
var defaultDialer = &net.Dialer{Control: pacing.OffOnLoopback}

func (s *Server) listenConfig() *net.ListenConfig {
	if s.ListenConfig != nil {
		return s.ListenConfig
	}
	return &net.ListenConfig{Control: pacing.OffOnLoopback}
}

func (s *Server) resolver() *net.Resolver {
	if s.Resolver != nil {
		return s.Resolver
	}
	return net.DefaultResolver
}

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// ListenAndServe listens on the UDP address addr (":1745" when empty) and calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	if addr == "" {
		addr = ":" + strconv.Itoa(DefaultPort)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	return s.Serve(pc)
}

// Serve reads control datagrams from pc until pc fails or Close is called, when it returns
// ErrServerClosed. It closes pc on return and ends the sessions that came through it.
func (s *Server) Serve(pc net.PacketConn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pc.Close()
		return ErrServerClosed
	}
	if s.pcs == nil {
		s.pcs = make(map[net.PacketConn]struct{})
		s.sessions = make(map[sessKey]*srvSession)
	}
	s.pcs[pc] = struct{}{}
	s.mu.Unlock()
	defer s.endPacketConn(pc)

	buf := make([]byte, MaxPacketLen)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return err
		}
		s.dispatch(pc, from, buf[:n])
	}
}

func (s *Server) endPacketConn(pc net.PacketConn) {
	pc.Close()
	s.mu.Lock()
	delete(s.pcs, pc)
	var end []*srvSession
	for k, ss := range s.sessions {
		if k.pc == pc {
			end = append(end, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range end {
		ss.close()
	}
}

// Close closes every packet conn given to Serve, ends all sessions, listeners and relays,
// and waits for the goroutines of the Server to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var pcs []net.PacketConn
	for pc := range s.pcs {
		pcs = append(pcs, pc)
	}
	var sessions []*srvSession
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, pc := range pcs {
		pc.Close()
	}
	for _, ss := range sessions {
		ss.close()
	}
	s.wg.Wait()
	return nil
}

func (s *Server) dispatch(pc net.PacketConn, from net.Addr, b []byte) {
	if len(b) < MinPacketLen {
		return
	}
	h, err := DecodeHeader(b)
	if err != nil {
		return
	}
	key := sessKey{pc, from.String()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	ss := s.sessions[key]
	if ss == nil {
		if h.Command != CmdHello || h.ServerID != [4]byte{} || len(s.sessions) >= orDefault(s.MaxSessions, DefaultMaxSessions) {
			s.mu.Unlock()
			s.logger().Debug("msproxy: datagram for no session dropped", "from", from, "command", h.Command)
			return
		}
		ss, err = s.newSession(pc, from, key)
		if err != nil {
			s.mu.Unlock()
			s.logger().Info("msproxy: session refused", "from", from, "err", err)
			return
		}
		s.sessions[key] = ss
	}
	s.mu.Unlock()
	ss.enqueue(bytes.Clone(b))
}

// srvSession is the server side of one client's control channel.
type srvSession struct {
	s        *Server
	pc       net.PacketConn
	remote   net.Addr
	key      sessKey
	remoteIP netip.Addr
	localIP  netip.Addr
	serverID [4]byte
	ctx      context.Context
	cancel   context.CancelFunc
	bindAck  chan struct{}

	mu         sync.Mutex
	closed     bool
	queue      [][]byte
	running    bool
	idle       *time.Timer
	active     int // relays and binds in progress
	closers    map[io.Closer]struct{}
	seq        uint8 // next sequence to send
	hellos     int
	clientID   [4]byte // of the last request, for unsolicited packets
	clientSeq  uint8
	lastKey    reqKey
	haveLast   bool
	lastAnswer []byte
	bindLn     net.Listener
	bindID     [4]byte
	clientPort uint16
	bindGo     bool
}

func (s *Server) newSession(pc net.PacketConn, from net.Addr, key sessKey) (*srvSession, error) {
	remote, err := netip.ParseAddrPort(from.String())
	if err != nil {
		return nil, err
	}
	local := localAddrFor(pc, remote)
	if !local.Is4() || !remote.Addr().Unmap().Is4() {
		return nil, errors.New("MS Proxy v2 needs IPv4 addresses")
	}
	ss := &srvSession{
		s: s, pc: pc, remote: from, key: key,
		remoteIP: remote.Addr().Unmap(), localIP: local,
		bindAck: make(chan struct{}, 1),
		closers: make(map[io.Closer]struct{}),
	}
	if _, err := rand.Read(ss.serverID[:]); err != nil {
		return nil, err
	}
	ss.ctx, ss.cancel = context.WithCancel(context.Background())
	ss.idle = time.AfterFunc(orDefault(s.SessionTimeout, DefaultSessionTimeout), ss.idleTimeout)
	s.logger().Debug("msproxy: session start", "client", from)
	return ss, nil
}

// localAddrFor returns the address of pc that the client reaches: pc's own when it is bound
// to one, else the source address the kernel routes to the client from.
func localAddrFor(pc net.PacketConn, remote netip.AddrPort) netip.Addr {
	if la, err := netip.ParseAddrPort(pc.LocalAddr().String()); err == nil && !la.Addr().IsUnspecified() {
		return la.Addr().Unmap()
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(remote))
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
}

func (ss *srvSession) enqueue(b []byte) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || len(ss.queue) >= maxQueued {
		return
	}
	ss.idle.Reset(orDefault(ss.s.SessionTimeout, DefaultSessionTimeout))
	ss.queue = append(ss.queue, b)
	if !ss.running {
		ss.running = true
		ss.s.wg.Add(1)
		go ss.work()
	}
}

func (ss *srvSession) work() {
	defer ss.s.wg.Done()
	for {
		ss.mu.Lock()
		if ss.closed || len(ss.queue) == 0 {
			ss.running = false
			ss.queue = nil
			ss.mu.Unlock()
			return
		}
		b := ss.queue[0]
		ss.queue = ss.queue[1:]
		ss.mu.Unlock()
		ss.handle(b)
	}
}

func (ss *srvSession) idleTimeout() {
	ss.mu.Lock()
	if ss.active > 0 && !ss.closed {
		ss.idle.Reset(orDefault(ss.s.SessionTimeout, DefaultSessionTimeout))
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	ss.s.logger().Debug("msproxy: session idle", "client", ss.remote)
	ss.close()
}

// close ends the session and everything it holds; it is idempotent.
func (ss *srvSession) close() {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.closed = true
	ss.cancel()
	ss.idle.Stop()
	closers := ss.closers
	ss.closers = nil
	ss.mu.Unlock()
	for c := range closers {
		c.Close()
	}
	ss.s.mu.Lock()
	if ss.s.sessions[ss.key] == ss {
		delete(ss.s.sessions, ss.key)
	}
	ss.s.mu.Unlock()
	ss.s.logger().Debug("msproxy: session end", "client", ss.remote)
}

// track registers c to be closed with the session, or closes it at once if the session has
// ended; it reports whether c was registered.
func (ss *srvSession) track(c io.Closer) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		c.Close()
		return false
	}
	ss.closers[c] = struct{}{}
	return true
}

func (ss *srvSession) untrack(c io.Closer) {
	ss.mu.Lock()
	delete(ss.closers, c)
	ss.mu.Unlock()
	c.Close()
}

// begin and end count relays and binds; a session whose last one ends lingers briefly.
func (ss *srvSession) begin() {
	ss.mu.Lock()
	ss.active++
	ss.mu.Unlock()
}

func (ss *srvSession) end() {
	ss.mu.Lock()
	ss.active--
	if ss.active == 0 && !ss.closed {
		ss.idle.Reset(min(sessionGrace, orDefault(ss.s.SessionTimeout, DefaultSessionTimeout)))
	}
	ss.mu.Unlock()
}

// encode fills the header of an answer (or unsolicited packet) and encodes it; the caller
// holds ss.mu.
func (ss *srvSession) encode(m Message) []byte {
	h := m.Hdr()
	h.ClientID, h.Version, h.ServerID, h.Ack, h.Seq = ss.clientID, Version, ss.serverID, ss.clientSeq, ss.seq
	ss.seq++
	b, err := m.Append(nil)
	if err != nil {
		ss.s.logger().Error("msproxy: encoding an answer", "err", err)
		return nil
	}
	return b
}

func (ss *srvSession) write(b []byte) {
	if b != nil {
		ss.pc.WriteTo(b, ss.remote)
	}
}

func (ss *srvSession) handle(b []byte) {
	m, err := DecodeRequest(b)
	if err != nil {
		ss.s.logger().Debug("msproxy: bad datagram", "client", ss.remote, "err", err)
		return
	}
	h := *m.Hdr()
	if ss.s.observe != nil {
		ss.s.observe(h)
	}
	key := reqKey{h.ClientID, h.ServerID, h.Ack, h.Seq, h.Command}
	ss.mu.Lock()
	if ss.haveLast && key == ss.lastKey {
		ans := ss.lastAnswer
		ss.mu.Unlock()
		ss.write(ans) // retransmission: same answer, no second action
		return
	}
	if ss.hellos > 0 && h.ServerID != ss.serverID {
		ss.mu.Unlock()
		ss.s.logger().Debug("msproxy: wrong server id", "client", ss.remote)
		return
	}
	ss.mu.Unlock()

	var ans Message
	if cmd, ok := ss.answerHook(h); ok {
		ans = &Plain{Header{Command: cmd}}
	} else {
		ans = ss.process(m)
	}

	ss.mu.Lock()
	ss.clientID, ss.clientSeq = h.ClientID, h.Seq
	ss.lastKey, ss.haveLast, ss.lastAnswer = key, true, nil
	if ans != nil && !ss.closed {
		ss.lastAnswer = ss.encode(ans)
	}
	out := ss.lastAnswer
	ss.mu.Unlock()
	ss.write(out)
}

func (ss *srvSession) answerHook(h Header) (uint16, bool) {
	if ss.s.answer == nil {
		return 0, false
	}
	return ss.s.answer(h)
}

// process acts on a new request and returns its answer, or nil when none is due.
func (ss *srvSession) process(m Message) Message {
	h := m.Hdr()
	switch m := m.(type) {
	case *Hello:
		ss.mu.Lock()
		ss.hellos++
		n := ss.hellos
		ss.mu.Unlock()
		if n == 1 {
			port := uint16(0)
			if la, err := netip.ParseAddrPort(ss.pc.LocalAddr().String()); err == nil {
				port = la.Port()
			}
			return &HelloAck{Header: Header{Command: CmdHelloAck}, Control: netip.AddrPortFrom(ss.localIP, port)}
		}
		return &Plain{Header{Command: CmdUserInfoAck}} // packet 2 and keepalives
	case *Resolve:
		return ss.resolve(m.Name)
	case *Connect:
		if h.Command == CmdListen {
			return nil
		}
		return ss.connect(m.Dest)
	case *Bind:
		return ss.bind(m)
	case *Bind2:
		return ss.bind2(m)
	case *BindInfoAck:
		ss.mu.Lock()
		ok := m.BindID == ss.bindID && ss.bindLn != nil
		ss.mu.Unlock()
		if ok {
			select {
			case ss.bindAck <- struct{}{}:
			default:
			}
		}
		return &Plain{Header{Command: CmdUserInfoAck}} // any packet will do
	}
	switch h.Command {
	case CmdConnected:
		return nil
	case CmdSessionEnd:
		ss.close()
		return nil
	}
	ss.s.logger().Debug("msproxy: unknown command ignored", "client", ss.remote, "command", h.Command)
	return nil
}

func (ss *srvSession) resolve(name string) Message {
	ctx, cancel := context.WithTimeout(ss.ctx, orDefault(ss.s.ConnectTimeout, DefaultConnectTimeout))
	defer cancel()
	ans := &ResolveAck{Header: Header{Command: CmdResolveAck}, Addr: netip.IPv4Unspecified()}
	ips, err := ss.s.resolver().LookupNetIP(ctx, "ip4", name)
	if err != nil || len(ips) == 0 {
		ss.s.logger().Info("msproxy: resolve failed", "client", ss.remote, "name", name, "err", err)
		return ans
	}
	ans.Addr = ips[0].Unmap()
	return ans
}

func (ss *srvSession) listen(port uint16) (net.Listener, error) {
	return ss.s.listenConfig().Listen(ss.ctx, "tcp4", net.JoinHostPort(ss.localIP.String(), strconv.Itoa(int(port))))
}

func addrPortOf(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	if !ap.Addr().Unmap().Is4() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (ss *srvSession) connect(dest netip.AddrPort) Message {
	log := ss.s.logger().With("client", ss.remote, "dest", dest)
	if !dest.Addr().IsValid() || dest.Addr().IsUnspecified() || dest.Port() == 0 {
		log.Info("msproxy: connect to an invalid destination")
		return &Plain{Header{Command: CmdRefused}}
	}
	ctx, cancel := context.WithTimeout(ss.ctx, orDefault(ss.s.ConnectTimeout, DefaultConnectTimeout))
	defer cancel()
	out, err := ss.s.dialer().DialContext(ctx, "tcp", dest.String())
	if err != nil {
		log.Info("msproxy: connect failed", "err", err)
		return &Plain{Header{Command: CmdRefused}}
	}
	ln, err := ss.listen(0)
	if err != nil {
		out.Close()
		log.Error("msproxy: forwarding listener", "err", err)
		return &Plain{Header{Command: CmdRefused}}
	}
	if !ss.track(out) || !ss.track(ln) {
		out.Close()
		ln.Close()
		return nil
	}
	ss.begin()
	ss.s.wg.Add(1)
	go ss.forward(ln, out)
	fwd := addrPortOf(ln.Addr())
	src := addrPortOf(out.LocalAddr())
	log.Debug("msproxy: connected", "forward", fwd)
	return &ConnectAck{Header: Header{Command: CmdConnectAck}, Endpoints: Endpoints{
		Addr: fwd, ServerPort: fwd.Port(), SourcePort: src.Port(), Bound: src,
	}}
}

// forward accepts the client's data connection on ln and relays it to out.
func (ss *srvSession) forward(ln net.Listener, out net.Conn) {
	defer ss.s.wg.Done()
	defer ss.end()
	defer ss.untrack(out)
	if tl, ok := ln.(*net.TCPListener); ok {
		tl.SetDeadline(time.Now().Add(orDefault(ss.s.ConnectTimeout, DefaultConnectTimeout)))
	}
	var c net.Conn
	for range 16 { // strangers get a few tries, then the forward is abandoned
		nc, err := ln.Accept()
		if err != nil {
			break
		}
		if addrPortOf(nc.RemoteAddr()).Addr() != ss.remoteIP {
			nc.Close()
			continue
		}
		c = nc
		break
	}
	ss.untrack(ln)
	if c == nil || !ss.track(c) {
		return
	}
	defer ss.untrack(c)
	relay(c, out)
}

func (ss *srvSession) bind(m *Bind) Message {
	ss.mu.Lock()
	busy := ss.bindLn != nil
	ss.mu.Unlock()
	if busy {
		return &Plain{Header{Command: CmdBindAuthFailed}}
	}
	ln, err := ss.listen(m.Requested.Port())
	if err != nil {
		ss.s.logger().Info("msproxy: bind failed", "client", ss.remote, "err", err)
		if errors.Is(err, syscall.EADDRINUSE) {
			return &Plain{Header{Command: CmdAddrInUse}}
		}
		return &Plain{Header{Command: CmdBindAuthFailed}}
	}
	if !ss.track(ln) {
		return nil
	}
	var id [4]byte
	rand.Read(id[:])
	ss.mu.Lock()
	ss.bindLn, ss.bindID, ss.clientPort = ln, id, m.ListenPort
	ss.mu.Unlock()
	return &BindAck{Header: Header{Command: CmdBindAck}, BindID: id, Bound: addrPortOf(ln.Addr())}
}

func (ss *srvSession) bind2(m *Bind2) Message {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.bindLn == nil || m.BindID != ss.bindID {
		return &Plain{Header{Command: CmdBindAuthFailed}}
	}
	if !ss.bindGo && !ss.closed {
		ss.bindGo = true
		ss.active++
		ss.s.wg.Add(1)
		go ss.serveBind(ss.bindLn)
	}
	return &Plain{Header{Command: CmdBind2Ack}}
}

// serveBind waits for the peer on the bound port, announces it with BINDINFO until
// BINDINFO_ACK arrives, then connects to the client's listening port from the announced
// source port and relays.
func (ss *srvSession) serveBind(ln net.Listener) {
	defer ss.s.wg.Done()
	defer ss.end()
	log := ss.s.logger().With("client", ss.remote)
	peer, err := ln.Accept()
	ss.untrack(ln)
	if err != nil {
		return
	}
	if !ss.track(peer) {
		return
	}
	defer ss.untrack(peer)
	srcPort := freePort(ss.localIP)
	ss.mu.Lock()
	info := ss.encode(&ConnectAck{Header: Header{Command: CmdBindInfo}, Endpoints: Endpoints{
		Addr: addrPortOf(peer.RemoteAddr()), ServerPort: srcPort, SourcePort: srcPort, Bound: addrPortOf(ln.Addr()),
	}})
	clientPort := ss.clientPort
	ss.mu.Unlock()
	wait := orDefault(ss.s.RetryInterval, DefaultRetryInterval)
	t := time.NewTimer(wait)
	defer t.Stop()
	acked := false
	for i := 0; i <= orDefault(ss.s.Retries, DefaultRetries) && !acked; i++ {
		ss.write(info)
		select {
		case <-ss.bindAck:
			acked = true
		case <-t.C:
			wait = min(2*wait, maxRetryInterval)
			t.Reset(wait)
		case <-ss.ctx.Done():
			return
		}
	}
	if !acked {
		log.Info("msproxy: no BINDINFO_ACK")
		return
	}
	ctx, cancel := context.WithTimeout(ss.ctx, orDefault(ss.s.ConnectTimeout, DefaultConnectTimeout))
	defer cancel()
	nd := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ss.localIP, srcPort)), Control: pacing.OffOnLoopback}
	c, err := nd.DialContext(ctx, "tcp4", netip.AddrPortFrom(ss.remoteIP, clientPort).String())
	if err != nil {
		log.Info("msproxy: bind connect-back failed", "err", err)
		return
	}
	if !ss.track(c) {
		return
	}
	defer ss.untrack(c)
	relay(peer, c)
}

// freePort returns a TCP port on ip that is free now, to be announced before it is used.
func freePort(ip netip.Addr) uint16 {
	ln, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort().Port()
}

// relay copies both ways, passing half-closes on, and returns when both directions end.
func relay(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		io.Copy(b, a)
		closeWrite(b)
		close(done)
	}()
	io.Copy(a, b)
	closeWrite(a)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
