package relay

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpWaiter lets one goroutine wait until either socket of an association
// is readable: an epoll instance holding both sockets, itself registered
// with the runtime's network poller through an os.File, so that waiting
// parks the goroutine like any network read (no thread is blocked).
type udpWaiter struct {
	f      *os.File
	rc     syscall.RawConn
	evs    [2]unix.EpollEvent
	readFn func(uintptr) bool // bound once: waiting allocates nothing
}

// newUDPWaiter returns nil when an epoll instance cannot be made; the
// caller then uses the blocking loops.
func newUDPWaiter(socks ...*net.UDPConn) *udpWaiter {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	ok := true
	for _, c := range socks {
		rc, err := c.SyscallConn()
		if err != nil {
			ok = false
			break
		}
		// The sockets stay in the set until the caller closes them (the
		// kernel then drops them) or until the epoll instance is closed.
		cerr := rc.Control(func(fd uintptr) {
			ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
			err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		})
		if cerr != nil || err != nil {
			ok = false
			break
		}
	}
	if ok && unix.SetNonblock(epfd, true) != nil {
		ok = false
	}
	if !ok {
		unix.Close(epfd)
		return nil
	}
	f := os.NewFile(uintptr(epfd), "udp-association-epoll") // non-blocking: pollable
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	w := &udpWaiter{f: f, rc: rc}
	w.readFn = w.ready
	return w
}

// wait parks until a socket is readable, dl passes (an error for which
// os.IsTimeout is true), or wake is called (the same error). A wake that
// comes before wait has set dl would be undone by it, so wait checks
// stopped (which the association sets before it wakes) after setting dl.
func (w *udpWaiter) wait(dl time.Time, stopped *atomic.Bool) error {
	if err := w.f.SetReadDeadline(dl); err != nil {
		return err
	}
	if stopped.Load() {
		return os.ErrDeadlineExceeded
	}
	return w.rc.Read(w.readFn)
}

// ready is the RawConn.Read callback of wait: true when a socket is
// readable (or the epoll instance failed), false to park.
func (w *udpWaiter) ready(fd uintptr) bool {
	for {
		n, err := unix.EpollWait(int(fd), w.evs[:], 0)
		if err == unix.EINTR {
			continue
		}
		return n != 0 || err != nil
	}
}

// wake makes a wait in progress, and every later one, return at once.
func (w *udpWaiter) wake() { _ = w.f.SetReadDeadline(udpPast) }

func (w *udpWaiter) close() { _ = w.f.Close() }

// errWouldBlock reports a socket with nothing to read.
var errWouldBlock = errors.New("relay: no datagram waiting")

// udpRawReader reads one datagram without waiting, allocation-free.
type udpRawReader struct {
	rc   syscall.RawConn
	buf  []byte
	n    int
	src  netip.AddrPort
	err  error
	read func(uintptr) bool // bound once
}

func newUDPRawReader(c *net.UDPConn) (*udpRawReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &udpRawReader{rc: rc}
	r.read = r.readOnce
	return r, nil
}

// next reads one datagram into buf. The error is errWouldBlock when none
// is waiting, the RawConn's error when the socket was closed or its
// deadline passed (the association's way of stopping), or the recvfrom
// error.
func (r *udpRawReader) next(buf []byte) (int, netip.AddrPort, error) {
	r.buf, r.n, r.src, r.err = buf, 0, netip.AddrPort{}, nil
	if err := r.rc.Read(r.read); err != nil {
		return 0, netip.AddrPort{}, err
	}
	return r.n, r.src, r.err
}

func (r *udpRawReader) readOnce(fd uintptr) bool {
	var rsa unix.RawSockaddrAny
	for {
		rsaLen := uint32(unsafe.Sizeof(rsa))
		var p unsafe.Pointer
		if len(r.buf) > 0 {
			p = unsafe.Pointer(&r.buf[0])
		}
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(p), uintptr(len(r.buf)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&rsaLen)))
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			r.err = errWouldBlock
			return true
		default:
			r.err = os.NewSyscallError("recvfrom", errno)
			return true
		}
		r.n = int(n)
		switch rsa.Addr.Family {
		case unix.AF_INET:
			sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
			port := sa.Port>>8 | sa.Port<<8 // network byte order
			r.src = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port)
		case unix.AF_INET6:
			sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
			port := sa.Port>>8 | sa.Port<<8
			r.src = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
		}
		return true
	}
}

// pollLoops counts associations served by pollLoop. For tests.
var pollLoops atomic.Int64

// udpPollBatch bounds how many datagrams one socket may deliver before the
// other one gets a turn.
const udpPollBatch = 32

// pollLoop serves both directions on one goroutine: it reads whatever is
// waiting on either socket, keeps polling for busyPoll after the last
// datagram it moved, and then parks in w until a socket is readable, the
// idle or reassembly deadline passes, or the association ends.
func (a *udpAssoc) pollLoop(w *udpWaiter, busyPoll time.Duration, bufs *udpBufs, up, down *UDPResult) {
	pollLoops.Add(1)
	cr, err1 := newUDPRawReader(a.client)
	pr, err2 := newUDPRawReader(a.remote)
	if err := errors.Join(err1, err2); err != nil {
		a.end(err)
		return
	}
	var clientErrs, peerErrs int
	fromClient := func(n int, src netip.AddrPort) {
		up.ClientDatagrams++
		a.fromClient(bufs.in[:n], src, up)
	}
	fromPeer := func(n int, src netip.AddrPort) {
		down.PeerDatagrams++
		a.fromPeer(bufs.out[:], n, src, down)
	}
	lastMoved := udpNanotime()
	rounds := 0
	for {
		movedUp, ok := a.drain(cr, bufs.in[:], &clientErrs, fromClient)
		if !ok {
			return
		}
		movedDown, ok := a.drain(pr, bufs.out[udpRoom:], &peerErrs, fromPeer)
		if !ok {
			return
		}
		moved := movedUp || movedDown
		if a.stopped.Load() {
			return
		}
		if a.q.active {
			a.expire(up) // the reassembly timer, even while peers keep the loop busy
		}
		// Every 16 rounds without parking, let the process's other runnable
		// goroutines have the processor, whether or not datagrams flow.
		if rounds++; rounds%16 == 0 {
			runtime.Gosched()
		}
		now := udpNanotime()
		if moved {
			lastMoved = now
			continue
		}
		if now-lastMoved < int64(busyPoll) {
			continue // keep polling
		}
		dl, ok := a.pollDeadline(up)
		if !ok {
			return
		}
		if err := w.wait(dl, &a.stopped); err != nil && !isUDPTimeout(err) {
			a.end(err)
			return
		}
	}
}

// drain reads what is waiting on r, at most udpPollBatch datagrams, into
// buf and hands each to deliver. It reports whether it moved any, and false
// in ok when the association is ending.
func (a *udpAssoc) drain(r *udpRawReader, buf []byte, errs *int, deliver func(n int, src netip.AddrPort)) (moved, ok bool) {
	for range udpPollBatch {
		n, src, err := r.next(buf)
		if err == errWouldBlock {
			break
		}
		if err != nil {
			return moved, a.onPollError(err, errs)
		}
		*errs = 0
		moved = true
		deliver(n, src)
	}
	return moved, true
}

// onPollError handles an error from a non-blocking read and reports
// whether the loop goes on.
func (a *udpAssoc) onPollError(err error, errs *int) bool {
	if a.stopped.Load() {
		return false
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
		a.end(err)
		return false
	}
	// Transient errors (ICMP errors reported on the socket) are skipped; a
	// socket that keeps failing ends the association.
	*errs++
	if *errs >= udpMaxReadErrors {
		a.end(err)
		return false
	}
	return true
}

// pollDeadline expires a due reassembly queue, ends an idle association
// (false), and returns when the loop must wake next: the earlier of the
// idle deadline and the reassembly timer, or zero for neither.
func (a *udpAssoc) pollDeadline(r *UDPResult) (time.Time, bool) {
	a.expire(r)
	next := a.q.deadline // zero when no queue
	if a.idle > 0 {
		quiet := time.Duration(udpNanotime() - a.last.Load())
		if quiet >= a.idle {
			a.end(ErrIdleTimeout)
			return time.Time{}, false
		}
		if idl := time.Now().Add(a.idle - quiet); next.IsZero() || idl.Before(next) {
			next = idl
		}
	}
	return next, !a.stopped.Load()
}
