package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/virgilproxy/socks/socks5"
)

// Defaults and limits of a UDP association.
const (
	// DefaultUDPIdleTimeout is the idle timeout of an association whose
	// UDPOptions.IdleTimeout is 0.
	DefaultUDPIdleTimeout = 5 * time.Minute
	// DefaultReassemblyTimeout is RFC 1928's reassembly timer ("no less
	// than 5 seconds"), used when UDPOptions.ReassemblyTimeout is 0.
	DefaultReassemblyTimeout = 5 * time.Second
	// DefaultMaxReassembly bounds a reassembly queue when
	// UDPOptions.MaxReassembly is 0: the largest IPv4 UDP payload.
	DefaultMaxReassembly = 65507
	// MaxFragments is the highest fragment position RFC 1928 can express
	// (FRAG 1 to 127; the high bit marks the last fragment).
	MaxFragments = 127

	// udpMaxPayload is the largest UDP payload a socket can return.
	udpMaxPayload = 65535
	// Resolver cache of an association.
	udpCacheSize    = 64
	udpCacheTTL     = 60 * time.Second
	udpNegativeTTL  = 5 * time.Second
	udpResolveLimit = 5 * time.Second
	// udpMaxReadErrors consecutive unexpected read errors end an
	// association; fewer are skipped as transient.
	udpMaxReadErrors = 16
)

// ErrBadAssociation is returned by [Associate] when it is called without a
// control connection, without both UDP sockets, or without a valid client
// IP in [UDPOptions.Client].
var ErrBadAssociation = errors.New("relay: invalid UDP association arguments")

// UDPOptions configure an association run by [Associate]. Only Client is
// required.
type UDPOptions struct {
	// Client is the client's address: the IP of its TCP control connection,
	// and the port it declared in the UDP ASSOCIATE request. Port 0 means
	// "not declared": the port is learned from the first well-formed
	// datagram that arrives from Client's IP, then fixed for the life of the
	// association. The IP is compared without IPv4-mapping and without zone.
	Client netip.AddrPort

	// IdleTimeout ends the association when no datagram was forwarded in
	// either direction for this long. 0 means DefaultUDPIdleTimeout; a
	// negative value disables the idle timeout. Dropped datagrams do not
	// count as activity.
	IdleTimeout time.Duration

	// Resolve resolves the domain name of a client datagram (ATYP 3). nil
	// means net.DefaultResolver (IPv4 only when the remote socket is
	// IPv4). Answers are cached per association: at most 64 names, for 60
	// seconds (failures for 5 seconds). The context passed to Resolve ends
	// with the association and after 5 seconds.
	Resolve func(ctx context.Context, host string) (netip.Addr, error)

	// Allow, when set, is asked about every datagram that would be
	// forwarded. For client-to-peer datagrams outbound is true, peer is the
	// destination (after resolution) and name is the domain name the
	// client used ("" for an IP destination). For peer-to-client datagrams
	// outbound is false, peer is the source and name is "". Returning false
	// drops the datagram (counted in DroppedPolicy). It is called from the
	// association's two relaying goroutines, possibly at the same time.
	Allow func(outbound bool, peer netip.AddrPort, name string) bool

	// ReassemblyTimeout is the RFC 1928 reassembly timer: a fragment
	// sequence not completed this long after its first fragment is
	// discarded. 0 means DefaultReassemblyTimeout. RFC 1928 requires at
	// least 5 seconds; smaller values are accepted (for tests).
	ReassemblyTimeout time.Duration

	// MaxReassembly bounds the payload bytes of a reassembly queue; a
	// sequence that grows beyond it is discarded. 0 means
	// DefaultMaxReassembly; values above 65535 are lowered to 65535.
	MaxReassembly int

	// MaxFragments is the highest fragment position accepted, 1 to 127.
	// 0 means MaxFragments (127); larger values are lowered to 127.
	MaxFragments int

	// BusyPoll, when positive, makes the association poll its two sockets
	// without sleeping for this long after each datagram it moves, instead
	// of waiting in the runtime's network poller (Linux; elsewhere it is
	// ignored). One goroutine then serves both directions.
	//
	// It trades CPU for latency: a proxy that sleeps between the datagrams
	// of an exchange pays a wake-up on each hop (on the 2-core VM this was
	// measured on, most of a round trip), and one that keeps polling does
	// not. With 200 µs, a 64-byte round trip through the daemon took 37 to
	// 39 µs instead of 121 to 135 (BenchmarkUDPRelay; see the package
	// documentation). The cost: while datagrams keep arriving within the
	// window, the association keeps a core busy, and on a process with one
	// P (GOMAXPROCS=1) other sessions' network events wait for the window
	// to end, or for the runtime's 10 ms background poll when the traffic
	// never pauses. Use it for proxies that serve latency-bound UDP (games,
	// VoIP, DNS) and have a core to spare; leave it 0 (off) for
	// general-purpose ones.
	BusyPoll time.Duration
}

// UDPResult reports what an association moved and dropped. Every datagram
// the engine reads is accounted for exactly once:
//
//	ClientDatagrams + PeerDatagrams + Reassembled ==
//	    FromClientPackets + ToClientPackets + FragmentsJoined + Dropped()
//
// (a datagram reassembled from n fragments counts n FragmentsJoined, plus
// its fate as one datagram: FromClientPackets or one of the drop counters).
type UDPResult struct {
	FromClientBytes   int64 // payload bytes (headers excluded) sent from the client to peers
	FromClientPackets int64 // datagrams sent to peers (a reassembled datagram counts once)
	ToClientBytes     int64 // payload bytes (headers excluded) sent from peers to the client
	ToClientPackets   int64 // datagrams sent to the client

	ClientDatagrams int64 // datagrams read on the client-facing socket, from any source
	PeerDatagrams   int64 // datagrams read on the remote socket, from any source
	FragmentsJoined int64 // fragments that became part of a complete datagram
	Reassembled     int64 // complete datagrams built from fragments

	DroppedForeign       int64 // client side: source IP is not the client's, or source port is not the declared/learned one
	DroppedMalformed     int64 // client side: truncated or malformed header, or destination port 0
	DroppedFragment      int64 // fragments discarded: out of order, missing, over a limit, expired, or pending at the end
	DroppedPolicy        int64 // refused by UDPOptions.Allow (both directions)
	DroppedResolve       int64 // client datagrams whose domain name did not resolve
	DroppedSendError     int64 // sendto failed (both directions)
	DroppedUnknownClient int64 // peer datagrams that arrived before the client's port was known
}

// Dropped returns the sum of all the Dropped... counters.
func (r UDPResult) Dropped() int64 {
	return r.DroppedForeign + r.DroppedMalformed + r.DroppedFragment + r.DroppedPolicy +
		r.DroppedResolve + r.DroppedSendError + r.DroppedUnknownClient
}

func (r *UDPResult) add(o *UDPResult) {
	r.FromClientBytes += o.FromClientBytes
	r.FromClientPackets += o.FromClientPackets
	r.ToClientBytes += o.ToClientBytes
	r.ToClientPackets += o.ToClientPackets
	r.ClientDatagrams += o.ClientDatagrams
	r.PeerDatagrams += o.PeerDatagrams
	r.FragmentsJoined += o.FragmentsJoined
	r.Reassembled += o.Reassembled
	r.DroppedForeign += o.DroppedForeign
	r.DroppedMalformed += o.DroppedMalformed
	r.DroppedFragment += o.DroppedFragment
	r.DroppedPolicy += o.DroppedPolicy
	r.DroppedResolve += o.DroppedResolve
	r.DroppedSendError += o.DroppedSendError
	r.DroppedUnknownClient += o.DroppedUnknownClient
}

// Associate relays the datagrams of one SOCKS5 UDP association (RFC 1928
// section 7) between the client, which talks to clientSide, and the peers,
// which remoteSide talks to. The caller has done the TCP handshake, opened
// both sockets and sent the reply carrying clientSide's address.
//
// # Security
//
// A datagram on clientSide is accepted only from opt.Client's IP, and only
// from its port once that is known (declared in the request, or learned
// from the first well-formed datagram from that IP). Anything else is
// dropped and counted, never answered. Unlike Dante, a client that declared
// port 0 (or 0.0.0.0:0) cannot have its association claimed by another
// host: the IP always comes from the control connection. Datagrams from
// peers are forwarded only to the client's address, and dropped while its
// port is not yet known. Reply datagrams carry the real source of the
// payload, ATYP 1 for IPv4 (IPv4-mapped sources of a dual-stack socket are
// unmapped) or ATYP 4 for IPv6, with FRAG 0.
//
// # Per datagram
//
// One recvfrom, a header parse (which does not allocate for IP
// destinations), a cache lookup only for domain names, the Allow callback
// if any, and one sendto. Peer datagrams are read at an offset of
// socks5.MaxDatagramHeaderLen into the buffer and the header is written
// just in front of the payload, so the reply is sent without copying. The
// steady state allocates nothing for IP-addressed traffic.
//
// # Fragmentation
//
// Associate reassembles fragmented client datagrams as RFC 1928 section 7
// describes, with one reassembly queue per association: FRAG 0 is a
// standalone datagram (and discards any pending queue); FRAG 1 to 127 is a
// fragment position, with the high bit 0x80 marking the last fragment.
// Fragments must arrive in order, 1, 2, 3...: a fragment whose position is
// not the highest so far plus one (a repeat, a step back, or a gap, which
// can never be filled since a late fragment would be a step back)
// discards the queue, and a position-1 fragment then starts a new one.
// The queue is also discarded when the reassembly timer (from the first
// fragment) expires, when it would exceed opt.MaxReassembly bytes or
// opt.MaxFragments fragments, and when the association ends. A complete
// datagram goes to the destination of its first fragment. Replies are
// never fragmented. No SOCKS implementation we know of sends or accepts
// fragments (Dante drops every datagram with FRAG != 0, and clients do not
// fragment), so this path exists for RFC conformance and is exercised only
// by this package's tests.
//
// # Ending
//
// Associate returns when ctx is done (ctx.Err()), when the control
// connection's read returns EOF (nil error) or another error (that error,
// wrapped), or when the idle timeout passes ([ErrIdleTimeout]). Bytes the
// client sends on the control connection are read and ignored: RFC 1928
// gives them no meaning, and only the connection's end matters.
//
// Associate uses two goroutines besides the caller's (the control watcher
// and the peer-to-client loop; the client-to-peer loop runs in the
// caller's), plus, briefly, context.AfterFunc's when ctx ends; none
// outlives it. With UDPOptions.BusyPoll (Linux) the caller's goroutine
// serves both directions and only the control watcher is added; it waits
// on an epoll instance of its own holding both sockets. Associate takes
// over the deadlines of the two UDP sockets and the read deadline of
// control, clearing them at the start. To stop, it sets them in the past,
// which wakes every blocked read and write, and they stay in the past when
// it returns. It closes nothing: the caller closes the
// sockets and the control connection. The idle timeout costs no deadline
// update per datagram: each loop's read deadline is moved forward only
// when it fires while the association was active.
func Associate(ctx context.Context, control net.Conn, clientSide, remoteSide *net.UDPConn, opt UDPOptions) (UDPResult, error) {
	if control == nil || clientSide == nil || remoteSide == nil {
		return UDPResult{}, fmt.Errorf("%w: nil connection", ErrBadAssociation)
	}
	if !opt.Client.Addr().IsValid() {
		return UDPResult{}, fmt.Errorf("%w: no client IP", ErrBadAssociation)
	}
	if err := ctx.Err(); err != nil {
		return UDPResult{}, err
	}
	a := newUDPAssoc(control, clientSide, remoteSide, opt)
	defer a.cancel()
	bufs := udpBufPool.Get().(*udpBufs)
	defer udpBufPool.Put(bufs)

	for _, err := range []error{
		clientSide.SetDeadline(time.Time{}),
		remoteSide.SetDeadline(time.Time{}),
		control.SetReadDeadline(time.Time{}),
	} {
		if err != nil {
			a.end(err)
		}
	}
	a.last.Store(udpNanotime())
	var waiter *udpWaiter
	if opt.BusyPoll > 0 {
		waiter = newUDPWaiter(clientSide, remoteSide) // nil where unsupported: the blocking loops serve
		a.setWaiter(waiter)
	}
	if a.idle > 0 && !a.stopped.Load() && waiter == nil {
		dl := time.Now().Add(a.idle)
		_ = clientSide.SetReadDeadline(dl)
		_ = remoteSide.SetReadDeadline(dl)
		if a.stopped.Load() { // end() may have run between the check and the sets
			a.wake()
		}
	}

	afterDone := make(chan struct{})
	stopAfter := context.AfterFunc(ctx, func() {
		a.end(ctx.Err())
		close(afterDone)
	})

	var wg sync.WaitGroup
	var up, down UDPResult
	wg.Go(a.watchControl)
	if waiter != nil {
		a.pollLoop(waiter, opt.BusyPoll, bufs, &up, &down)
		waiter.close()
	} else {
		wg.Go(func() { a.peerLoop(bufs.out[:], &down) })
		a.clientLoop(bufs.in[:], &up)
	}
	wg.Wait()
	if !stopAfter() {
		<-afterDone
	}
	a.discard(&up) // a sequence still pending is lost
	up.add(&down)

	a.mu.Lock()
	err := a.err
	a.mu.Unlock()
	return up, err
}

// udpBufs are the two receive buffers of an association, pooled so that
// short associations reuse them. out has room for the longest header in
// front of the largest payload.
type udpBufs struct {
	in  [udpMaxPayload]byte
	out [socks5.MaxDatagramHeaderLen + udpMaxPayload]byte
}

var udpBufPool = sync.Pool{New: func() any { return new(udpBufs) }}

var udpEpoch = time.Now()

// udpNanotime is a monotonic clock reading.
func udpNanotime() int64 { return int64(time.Since(udpEpoch)) }

// udpPast wakes every blocked operation on a socket.
var udpPast = time.Unix(1, 0)

// udpAssoc is the state of one association. Fields below "client loop
// only" are touched by the client-to-peer loop alone and need no lock.
type udpAssoc struct {
	control          net.Conn
	client, remote   *net.UDPConn
	clientIP         netip.Addr // unmapped, with zone: where replies go
	clientKey        netip.Addr // unmapped, without zone: what sources are compared to
	clientPort       atomic.Uint32
	idle             time.Duration
	allow            func(bool, netip.AddrPort, string) bool
	reasmTimeout     time.Duration
	maxReasm         int
	maxFrags         int
	last             atomic.Int64 // udpNanotime of the last forwarded datagram
	ctx              context.Context
	cancel           context.CancelFunc
	stopped          atomic.Bool
	mu               sync.Mutex
	waiter           *udpWaiter // busy-poll path only; guarded by mu
	ended            bool
	err              error
	resolver         udpResolver
	q                udpReasm  // client loop only
	extraDL          time.Time // client loop only: reassembly deadline included in the read deadline
	clientReadErrors int       // client loop only
}

func newUDPAssoc(control net.Conn, clientSide, remoteSide *net.UDPConn, opt UDPOptions) *udpAssoc {
	a := &udpAssoc{
		control:      control,
		client:       clientSide,
		remote:       remoteSide,
		idle:         opt.IdleTimeout,
		allow:        opt.Allow,
		reasmTimeout: opt.ReassemblyTimeout,
		maxReasm:     opt.MaxReassembly,
		maxFrags:     opt.MaxFragments,
	}
	ip := opt.Client.Addr()
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	a.clientIP = ip
	a.clientKey = ip.WithZone("")
	a.clientPort.Store(uint32(opt.Client.Port()))
	if a.idle == 0 {
		a.idle = DefaultUDPIdleTimeout
	}
	if a.reasmTimeout <= 0 {
		a.reasmTimeout = DefaultReassemblyTimeout
	}
	if a.maxReasm <= 0 {
		a.maxReasm = DefaultMaxReassembly
	}
	a.maxReasm = min(a.maxReasm, udpMaxPayload)
	if a.maxFrags <= 0 || a.maxFrags > MaxFragments {
		a.maxFrags = MaxFragments
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.resolver.init(opt.Resolve, remoteSide)
	return a
}

// end records the reason the association ends (the first one wins; nil is
// a normal end) and wakes the loops.
func (a *udpAssoc) end(err error) {
	a.mu.Lock()
	first := !a.ended
	if first {
		a.ended = true
		a.err = err
	}
	a.mu.Unlock()
	if !first {
		return
	}
	// stopped is set before the deadlines move, so a loop that moves its
	// own deadline afterwards sees stopped when it checks again.
	a.stopped.Store(true)
	a.cancel()
	a.wake()
}

func (a *udpAssoc) wake() {
	_ = a.client.SetDeadline(udpPast)
	_ = a.remote.SetDeadline(udpPast)
	_ = a.control.SetReadDeadline(udpPast)
	a.mu.Lock()
	w := a.waiter
	a.mu.Unlock()
	if w != nil {
		w.wake()
	}
}

// setWaiter installs the busy-poll path's waiter, waking it at once if the
// association already ended.
func (a *udpAssoc) setWaiter(w *udpWaiter) {
	if w == nil {
		return
	}
	a.mu.Lock()
	a.waiter = w
	a.mu.Unlock()
	if a.stopped.Load() {
		w.wake()
	}
}

// watchControl ends the association when the control connection ends.
// Data is read and ignored.
func (a *udpAssoc) watchControl() {
	var b [512]byte
	for {
		_, err := a.control.Read(b[:])
		if err == nil {
			continue
		}
		if a.stopped.Load() {
			return
		}
		if errors.Is(err, io.EOF) {
			a.end(nil)
		} else {
			a.end(fmt.Errorf("relay: UDP association control connection: %w", err))
		}
		return
	}
}

// onReadError handles a read error of one loop and reports whether the
// loop goes on. extra is a deadline to include besides the idle one.
func (a *udpAssoc) onReadError(c *net.UDPConn, err error, errs *int, extra func() time.Time) bool {
	if a.stopped.Load() {
		return false
	}
	if errors.Is(err, net.ErrClosed) {
		a.end(err)
		return false
	}
	if !isUDPTimeout(err) {
		// Transient errors (for example ICMP errors reported on the socket)
		// are skipped; a socket that keeps failing ends the association.
		*errs++
		if *errs >= udpMaxReadErrors {
			a.end(err)
			return false
		}
		return true
	}
	var x time.Time
	if extra != nil {
		x = extra()
	}
	return a.setReadDeadline(c, x)
}

// setReadDeadline moves c's read deadline to the idle deadline, or extra
// when that is earlier. It ends the association when it is idle.
func (a *udpAssoc) setReadDeadline(c *net.UDPConn, extra time.Time) bool {
	var next time.Time
	if a.idle > 0 {
		quiet := time.Duration(udpNanotime() - a.last.Load())
		if quiet >= a.idle {
			a.end(ErrIdleTimeout)
			return false
		}
		next = time.Now().Add(a.idle - quiet)
	}
	if !extra.IsZero() && (next.IsZero() || extra.Before(next)) {
		next = extra
	}
	if err := c.SetReadDeadline(next); err != nil {
		a.end(err)
		return false
	}
	return !a.stopped.Load()
}

func isUDPTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// clientLoop reads the client's datagrams and forwards them to peers.
func (a *udpAssoc) clientLoop(buf []byte, r *UDPResult) {
	extra := func() time.Time {
		a.expire(r)
		a.extraDL = a.q.deadline // zero when no queue
		return a.extraDL
	}
	for {
		n, src, err := a.client.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !a.onReadError(a.client, err, &a.clientReadErrors, extra) {
				return
			}
			continue
		}
		a.clientReadErrors = 0
		r.ClientDatagrams++
		a.fromClient(buf[:n], src, r)
		if a.q.active && a.q.deadline != a.extraDL {
			// A new fragment sequence: make sure its timer wakes us.
			a.extraDL = a.q.deadline
			if !a.setReadDeadline(a.client, a.extraDL) {
				return
			}
		}
	}
}

func (a *udpAssoc) fromClient(b []byte, src netip.AddrPort, r *UDPResult) {
	ip := src.Addr()
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if ip.WithZone("") != a.clientKey {
		r.DroppedForeign++
		return
	}
	port := a.clientPort.Load()
	if port != 0 && uint16(port) != src.Port() {
		r.DroppedForeign++
		return
	}
	d, err := socks5.ParseDatagram(b)
	if err != nil || d.Addr.Port == 0 {
		r.DroppedMalformed++
		return
	}
	if port == 0 {
		a.clientPort.Store(uint32(src.Port()))
	}
	if d.Frag != 0 {
		a.fragment(d, r)
		return
	}
	a.discard(r) // RFC 1928: a standalone datagram abandons a sequence
	a.forward(d.Addr, d.Data, r)
}

// forward sends one complete client datagram to its destination.
func (a *udpAssoc) forward(addr socks5.Addr, data []byte, r *UDPResult) {
	ip := addr.IP
	if !ip.IsValid() {
		var ok bool
		ip, ok = a.resolver.lookup(a.ctx, addr.Name)
		if !ok {
			r.DroppedResolve++
			return
		}
	}
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	dst := netip.AddrPortFrom(ip, addr.Port)
	if a.allow != nil && !a.allow(true, dst, addr.Name) {
		r.DroppedPolicy++
		return
	}
	if _, err := a.remote.WriteToUDPAddrPort(data, dst); err != nil {
		r.DroppedSendError++
		return
	}
	r.FromClientPackets++
	r.FromClientBytes += int64(len(data))
	a.last.Store(udpNanotime())
}

// peerLoop reads the peers' datagrams and forwards them to the client.
func (a *udpAssoc) peerLoop(buf []byte, r *UDPResult) {
	errs := 0
	for {
		n, src, err := a.remote.ReadFromUDPAddrPort(buf[udpRoom:])
		if err != nil {
			if !a.onReadError(a.remote, err, &errs, nil) {
				return
			}
			continue
		}
		errs = 0
		r.PeerDatagrams++
		a.fromPeer(buf, n, src, r)
	}
}

// udpRoom is the space peer loops leave in front of a datagram they read,
// for the SOCKS header.
const udpRoom = socks5.MaxDatagramHeaderLen

// fromPeer forwards to the client the n-byte datagram at buf[udpRoom:]
// that src sent, writing the header into the room in front of it.
func (a *udpAssoc) fromPeer(buf []byte, n int, src netip.AddrPort, r *UDPResult) {
	port := a.clientPort.Load()
	if port == 0 {
		r.DroppedUnknownClient++
		return
	}
	ip := src.Addr()
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	src = netip.AddrPortFrom(ip, src.Port())
	if a.allow != nil && !a.allow(false, src, "") {
		r.DroppedPolicy++
		return
	}
	hl := 10 // RSV FRAG ATYP, 4-byte IPv4, port
	if ip.Is6() {
		hl = 22
	}
	start := udpRoom - hl
	h, err := socks5.AppendDatagramHeader(buf[start:start], 0, socks5.Addr{IP: ip, Port: src.Port()})
	if err != nil || len(h) != hl {
		r.DroppedSendError++ // cannot happen for a source the kernel reported
		return
	}
	if _, err := a.client.WriteToUDPAddrPort(buf[start:udpRoom+n], netip.AddrPortFrom(a.clientIP, uint16(port))); err != nil {
		r.DroppedSendError++
		return
	}
	r.ToClientPackets++
	r.ToClientBytes += int64(n)
	a.last.Store(udpNanotime())
}
