package relay

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/virgilproxy/socks/internal/busypoll"
)

// ErrIdleTimeout is returned by [Pipe] when neither direction moved a byte
// for [Options.IdleTimeout].
var ErrIdleTimeout = errors.New("relay: idle timeout")

// Options tune a Pipe. The zero value is valid.
type Options struct {
	// IdleTimeout ends the session when NEITHER direction has moved a byte
	// for this long. Zero or negative means no idle timeout.
	IdleTimeout time.Duration

	// ParkIdle keeps an idle session down to one goroutine, the caller's,
	// on the splice path (Linux, both ends bare *net.TCPConn): once the
	// target has been silent for ParkDelay, the target->client direction
	// waits in a shared epoll instance instead of on a goroutine of its
	// own, which saves about 2.5 KiB per idle session (a goroutine's stack
	// and descriptor). It costs a few system calls each time the target
	// turns from silent to sending.
	//
	// With ParkIdle, closing target while Pipe runs is noticed only once
	// the client sends or the idle timeout passes, if the direction is
	// parked by then, because a parked direction does not wait on the
	// connection itself; end a Pipe by cancelling ctx or by closing client
	// instead, which stay prompt.
	ParkIdle bool

	// ParkDelay is how long a direction's source must have been silent
	// before the direction parks (with ParkIdle, and under Start). Until
	// then the direction waits on a goroutine in the runtime poller, as
	// without parking, so that a session that is exchanging bytes (a
	// request and its answer, a transfer that outruns its sender now and
	// then) does not go through the parker at every pause, which costs
	// an epoll_ctl and a wake-up of the parker's goroutine each time.
	// Zero means DefaultParkDelay; a negative value parks a direction as
	// soon as its source is drained.
	ParkDelay time.Duration
}

// DefaultParkDelay is the ParkDelay used when Options.ParkDelay is zero.
// Long enough to cover the pauses of a request-response exchange on a LAN
// and the stalls of a transfer; short enough that a burst of new sessions
// costs few goroutines at once (a proxy accepting 10,000 sessions a second
// holds about 2,000 extra while they are in their first 100 ms).
const DefaultParkDelay = 100 * time.Millisecond

// BusyPollChunk is the size under which a read is a small message. When
// the process's busy poller is on (a Server's BusyPoll), a direction's
// first small message, and each small one after another, keep it polling.
// Request-and-response traffic is made of such messages and waits for
// each; a bulk transfer is read in chunks of a segment (64 KiB on
// loopback) or more, keeps the process busy anyway, and would only spin in
// its short gaps.
const BusyPollChunk = 16 << 10

// Result reports what a Pipe moved. The counts are taken from the copy
// itself: bytes that were read from one side and written to the other.
type Result struct {
	ClientToTarget int64 // bytes read from client and written to target
	TargetToClient int64 // bytes read from target and written to client

	// Spliced is true when the zero-copy splice(2) path moved the bytes of
	// both directions (both ends bare *net.TCPConn on Linux, and neither
	// direction fell back to the copy loop).
	Spliced bool
}

// Pipe relays between client and target until both directions have
// finished, ctx is done, the idle timeout passes, or an error ends it.
//
// Half-close is kept: when one side's reads hit EOF, Pipe calls CloseWrite on
// the other side (when it has a CloseWrite() error method) and keeps relaying
// the other direction. An error on one direction (reset, broken pipe) ends
// both.
//
// Pipe closes neither connection; the caller closes both after Pipe returns.
// Pipe takes over the read and write deadlines of both connections: it
// clears them at the start (or sets them for the idle timeout) and, when it
// ends a session early, leaves them in the past.
//
// The error is nil for a normal end (both directions reached EOF),
// [ErrIdleTimeout] after the idle timeout, ctx.Err() when ctx is done
// (Pipe then returns promptly), and otherwise the first I/O error, as
// returned by the connection or, on the splice path, a *net.OpError wrapping
// an *os.SyscallError (so errors.Is(err, syscall.ECONNRESET) works). If the
// caller closes a connection while Pipe runs, that is reported as an error
// that satisfies errors.Is(err, net.ErrClosed).
//
// Pipe runs one direction in the calling goroutine and the other in one new
// goroutine (with Options.ParkIdle, in a goroutine only until the target
// has been silent for Options.ParkDelay, and again while it sends); both
// have finished when Pipe returns.
func Pipe(ctx context.Context, client, target net.Conn, opt Options) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	s := &session{client: client, target: target, idle: opt.IdleTimeout}
	if opt.ParkIdle {
		s.parkAfter = parkAfter(opt)
	}
	if s.idle < 0 {
		s.idle = 0
	}
	var deadline time.Time
	if s.idle > 0 {
		deadline = time.Now().Add(s.idle)
		t := nanotime()
		s.last[0].Store(t)
		s.last[1].Store(t)
	}
	if err := client.SetDeadline(deadline); err != nil {
		return Result{}, err
	}
	if err := target.SetDeadline(deadline); err != nil {
		return Result{}, err
	}
	s.dirs[0] = dir{s: s, idx: 0, src: client, dst: target, rdl: deadline, wdl: deadline}
	s.dirs[1] = dir{s: s, idx: 1, src: target, dst: client, rdl: deadline, wdl: deadline}
	setupSplice(s)

	s.watch.Add(1)
	stopWatch := context.AfterFunc(ctx, func() {
		defer s.watch.Done()
		s.fail(ctx.Err())
	})

	d1 := &s.dirs[1]
	s.wg.Add(1)
	parking := opt.ParkIdle && d1.sp != nil && theParker.enroll(d1)
	if parking {
		d1.beginParked()
	} else {
		go func() {
			d1.run()
			s.dirDone()
		}()
	}
	s.dirs[0].run()
	if parking {
		d1.takeParked()
	}
	s.wg.Wait()
	if parking {
		theParker.forget(d1)
	}
	if stopWatch() {
		s.watch.Done()
	}
	s.watch.Wait() // the AfterFunc, if it started, is done with the conns
	return s.result()
}

// Start relays between client and target as Pipe does, without holding a
// goroutine while both are silent: it returns at once, and done is called
// once, on a goroutine of the relay's, with what Pipe would have returned,
// after both directions have finished. Each direction runs on a goroutine
// of its own until its source has been silent for Options.ParkDelay; then
// it waits in the shared epoll instance described under Options.ParkIdle,
// and gets a goroutine again only while its source has bytes. An idle
// session so holds no goroutine at all. done must not block for long; it
// usually closes both connections.
//
// Start reports false, having changed nothing, when it cannot run the
// session that way: not Linux, an end
// that is not a bare *net.TCPConn, ctx already done, or no epoll instance
// (descriptor limit). The caller then uses Pipe.
//
// The idle timeout is kept by a timer rather than by deadlines, as no
// goroutine waits while the session is idle. As with Options.ParkIdle,
// closing a connection from outside is noticed, once its direction is
// parked, only when the other side sends; cancel ctx to end the session
// early.
func Start(ctx context.Context, client, target net.Conn, opt Options, done func(Result, error)) bool {
	if ctx.Err() != nil {
		return false
	}
	s := &session{client: client, target: target, async: true, done: done, idle: max(opt.IdleTimeout, 0), parkAfter: parkAfter(opt)}
	s.dirs[0] = dir{s: s, idx: 0, src: client, dst: target}
	s.dirs[1] = dir{s: s, idx: 1, src: target, dst: client}
	setupSplice(s) // nil sp unless Linux and both ends bare *net.TCPConn
	if s.dirs[0].sp == nil || s.dirs[1].sp == nil {
		return false
	}
	if client.SetDeadline(time.Time{}) != nil || target.SetDeadline(time.Time{}) != nil {
		return false
	}
	if !theParker.enroll(&s.dirs[0]) {
		return false
	}
	if !theParker.enroll(&s.dirs[1]) {
		theParker.forget(&s.dirs[0])
		return false
	}
	s.remaining.Store(2)
	s.watch.Add(1)
	s.stopWatch = context.AfterFunc(ctx, func() {
		defer s.watch.Done()
		s.fail(ctx.Err())
	})
	if s.idle > 0 {
		t := nanotime()
		s.last[0].Store(t)
		s.last[1].Store(t)
		// Armed only once s.idleTimer is set, which checkIdle reads.
		s.idleTimer = time.AfterFunc(math.MaxInt64, s.checkIdle)
		s.idleTimer.Reset(s.idle)
	}
	s.dirs[0].beginParked()
	s.dirs[1].beginParked()
	return true
}

// parkAfter is opt.ParkDelay in nanoseconds, DefaultParkDelay for zero,
// and zero (park at once) for a negative delay.
func parkAfter(opt Options) int64 {
	switch {
	case opt.ParkDelay < 0:
		return 0
	case opt.ParkDelay == 0:
		return int64(DefaultParkDelay)
	}
	return int64(opt.ParkDelay)
}

// beginParked starts d, enrolled with the parker and owned by the caller:
// on a goroutine of its own, which parks d once its source has been silent
// for the session's park delay, or, with no delay, parked at once (on a
// goroutine when it cannot park).
func (d *dir) beginParked() {
	d.park.Store(parkRunning)
	if d.s.parkAfter > 0 {
		d.lastActive = nanotime()
		d.rdlStale = true
		go d.runParking()
		return
	}
	if !d.parkNow() {
		go d.runParking()
	}
}

// dirDone is called once per direction when it has finished.
func (s *session) dirDone() {
	if !s.async {
		s.wg.Done()
		return
	}
	if s.remaining.Add(-1) == 0 {
		s.complete()
	}
}

// checkIdle is the idle timer of a session begun by Start: it ends the
// session when neither direction has moved a byte for the idle timeout,
// and otherwise waits again for the rest of it.
func (s *session) checkIdle() {
	if s.finished.Load() || s.stopped.Load() {
		return
	}
	quiet := time.Duration(nanotime() - max(s.last[0].Load(), s.last[1].Load()))
	if quiet >= s.idle {
		s.fail(ErrIdleTimeout)
		return
	}
	s.idleTimer.Reset(s.idle - quiet) // at most one stray run after complete, which returns above
}

// complete ends a session begun by Start, after both directions.
func (s *session) complete() {
	s.finished.Store(true)
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	if s.stopWatch() {
		s.watch.Done()
	}
	s.watch.Wait()
	theParker.forget(&s.dirs[0])
	theParker.forget(&s.dirs[1])
	s.done(s.result())
}

// result is what Pipe returns once both directions have finished.
func (s *session) result() (Result, error) {
	r := Result{
		ClientToTarget: s.dirs[0].n,
		TargetToClient: s.dirs[1].n,
		Spliced:        s.dirs[0].spliced() && s.dirs[1].spliced(),
	}
	if s.dirs[0].eof && s.dirs[1].eof {
		return r, nil // a cancellation that came after both EOFs changes nothing
	}
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	return r, err
}

// session is the state shared by the two directions of one Pipe.
type session struct {
	client, target net.Conn
	idle           time.Duration
	parkAfter      int64 // parking directions: nanoseconds of silence before parking; 0 parks at once

	// last holds, per direction, the nanotime of its last progress. Only
	// maintained when idle > 0.
	last [2]atomic.Int64

	stopped atomic.Bool // set (after err) when the session is being torn down
	mu      sync.Mutex
	err     error // first cause of an early end

	dirs  [2]dir
	wg    sync.WaitGroup // Pipe: the target->client direction is done
	watch sync.WaitGroup // the AfterFunc on ctx is done or will never run

	// Start's sessions.
	async     bool
	remaining atomic.Int32 // directions not finished
	stopWatch func() bool
	done      func(Result, error)
	idleTimer *time.Timer // keeps the idle timeout; nil without one
	finished  atomic.Bool // complete has run
}

// pastDeadline wakes every blocked operation on a connection.
var pastDeadline = time.Unix(1, 0)

// fail records err as the cause of the end of the session, if it is the
// first, and wakes both directions by moving both connections' deadlines to
// the past. Errors caused by that wake-up arrive after s.err is set, so they
// never replace the real cause.
func (s *session) fail(err error) {
	s.mu.Lock()
	first := s.err == nil
	if first {
		s.err = err
	}
	s.mu.Unlock()
	if !first {
		return
	}
	s.stopped.Store(true)
	_ = s.client.SetDeadline(pastDeadline)
	_ = s.target.SetDeadline(pastDeadline)
	s.unparkAll() // parked directions wait on no deadline
}

// epoch anchors nanotime; time.Since uses the monotonic clock.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// dir is one direction of a session: it reads src and writes dst.
type dir struct {
	s        *session
	idx      int // index into s.last: 0 client->target, 1 target->client
	src, dst net.Conn
	n        int64 // bytes written to dst
	eof      bool  // ended because src reached EOF

	rdl, wdl time.Time // the read deadline of src and write deadline of dst that we set

	sp       *spliceState // non-nil when the splice path is eligible
	fellBack bool         // the splice path handed over to the copy loop

	// Parking (Options.ParkIdle and Start; see park_linux.go).
	park      atomic.Int32 // parkOff, parkRunning, parkParked or parkSticky
	parkID    uint64       // the direction's epoll data in the parker
	parkArmed bool         // its source has been added to the parker's epoll set
	// lastActive is the nanotime of the direction's last progress (or of
	// its start or resumption), kept when the session has an idle timeout
	// or a park delay; only the direction's owner touches it.
	lastActive int64
	// rdlStale: the source's read deadline must be set afresh before the
	// next wait (the direction starts, or comes back from the parker, with
	// a park delay).
	rdlStale bool
	// lastSmall: the direction's last read was a small message (under
	// BusyPollChunk).
	lastSmall bool
}

// read notes a read of n > 0 bytes from src for the busy poller: a small
// message keeps it polling when it is the direction's first or follows
// another small one. A bulk transfer reads mostly whole segments, and an
// odd short read between them does not keep the process spinning in the
// transfer's gaps.
func (d *dir) read(n int) {
	small := n < BusyPollChunk
	if small && (d.lastSmall || d.n == 0) {
		busypoll.Kick()
	}
	d.lastSmall = small
}

func (d *dir) spliced() bool { return d.sp != nil && !d.fellBack }

func (d *dir) run() {
	if d.sp != nil {
		if d.sp.run(d) != runFallback {
			return
		}
		d.fellBack = true
	}
	d.copyLoop()
}

// States of dir.park (see park_linux.go).
const (
	parkOff     int32 = iota // not a parking direction
	parkRunning              // a goroutine owns it and may park it
	parkParked               // registered with the parker, no goroutine
	parkSticky               // a goroutine owns it and runs it to its end
)

// runResult is how the splice path left a direction.
type runResult int

const (
	runDone     runResult = iota // the direction has ended
	runFallback                  // continue with the copy loop
	runIdle                      // a parkable direction drained its source
)

// progress records activity for the idle timeout and the park delay.
func (d *dir) progress() {
	if d.s.idle > 0 || d.s.parkAfter > 0 {
		t := nanotime()
		if d.s.idle > 0 {
			d.s.last[d.idx].Store(t)
		}
		d.lastActive = t
	}
}

// finish ends the direction after EOF on src: it half-closes dst.
func (d *dir) finish() {
	d.eof = true
	if cw, ok := d.dst.(interface{ CloseWrite() error }); ok {
		// An error here (peer already gone) surfaces on the other direction.
		_ = cw.CloseWrite()
	}
}

// deadlineSlack tells a deadline that fired from an error that merely looks
// like one: a timeout reported while our deadline is still this far away is
// not ours (a sticky error such as tls.Conn's after a write timeout).
const deadlineSlack = 10 * time.Millisecond

// timeoutAction is what a direction does after one of its deadlines fired.
type timeoutAction int

const (
	timeoutEnd  timeoutAction = iota // the session is ending; its cause is recorded
	timeoutWait                      // wait again, under the deadline just set
	timeoutPark                      // the park delay has passed: park the direction
)

// onTimeout handles a deadline error from a read of src (read) or a write
// to dst. canPark is true on the splice path, where a parkable direction
// whose park delay has passed is parked rather than woken again.
func (d *dir) onTimeout(read, canPark bool, err error) timeoutAction {
	s := d.s
	if s.stopped.Load() {
		return timeoutEnd
	}
	dl := d.wdl
	if read {
		dl = d.rdl
	}
	if dl.IsZero() || time.Until(dl) > deadlineSlack {
		s.fail(err) // not a deadline we set
		return timeoutEnd
	}
	return d.setDeadline(read, canPark)
}

// setDeadline sets src's read deadline (read) or dst's write deadline to
// the next moment the direction must look again: the end of the idle
// timeout (Pipe's sessions; Start's keep it with a timer) or, for the read
// of a parkable direction, the end of its park delay, whichever comes
// first; no deadline when neither applies. It ends the session when the
// idle timeout has passed, and reports timeoutPark, setting nothing, when
// the park delay has.
func (d *dir) setDeadline(read, canPark bool) timeoutAction {
	s := d.s
	now := nanotime()
	var next int64 // from now; 0 for no deadline
	if s.idle > 0 && !s.async {
		quiet := now - max(s.last[0].Load(), s.last[1].Load())
		if quiet >= int64(s.idle) {
			s.fail(ErrIdleTimeout)
			return timeoutEnd
		}
		next = int64(s.idle) - quiet
	}
	if read && canPark && s.parkAfter > 0 && d.parkable() {
		quiet := now - d.lastActive
		if quiet >= s.parkAfter {
			return timeoutPark
		}
		if rest := s.parkAfter - quiet; next == 0 || rest < next {
			next = rest
		}
	}
	var at time.Time
	if next > 0 {
		at = time.Now().Add(time.Duration(next))
	}
	var serr error
	if read {
		d.rdl = at
		serr = d.src.SetReadDeadline(at)
	} else {
		d.wdl = at
		serr = d.dst.SetWriteDeadline(at)
	}
	if serr != nil {
		s.fail(serr)
		return timeoutEnd
	}
	// fail sets stopped before it moves deadlines to the past, so either
	// our new deadline was overwritten by fail's, or we see stopped here.
	if s.stopped.Load() {
		return timeoutEnd
	}
	return timeoutWait
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

const (
	smallBufSize = 512
	bufSize      = 32 << 10
)

var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

// bufGets and bufPuts count pooled buffers taken and given back by copy
// loops. For tests.
var bufGets, bufPuts atomic.Int64

// copyLoop is the portable path. While cold it reads into the small
// per-direction buffer and holds nothing from the pool; a read that fills
// the small buffer makes it hot: it takes a pooled 32 KiB buffer for the
// next reads, and gives it back after the first read that does not fill it.
func (d *dir) copyLoop() {
	// The cold-read buffer is allocated here, not in dir, so that sessions
	// on the splice path do not carry it.
	small := new([smallBufSize]byte)
	var big *[bufSize]byte
	defer func() {
		if big != nil {
			bufPool.Put(big)
			bufPuts.Add(1)
		}
	}()
	for {
		hot := big != nil
		buf := small[:]
		if hot {
			buf = big[:]
		}
		n, rerr := d.src.Read(buf)
		if n > 0 {
			d.progress()
			d.read(n)
			if !d.writeAll(buf[:n]) {
				return
			}
			switch {
			case !hot && n == len(buf):
				big = bufPool.Get().(*[bufSize]byte) // more is probably waiting
				bufGets.Add(1)
			case hot && n < len(buf):
				bufPool.Put(big) // drained: go cold before the next, possibly long, read
				big = nil
				bufPuts.Add(1)
			}
		}
		if rerr != nil {
			switch {
			case errors.Is(rerr, io.EOF):
				d.finish()
				return
			case isTimeout(rerr):
				if d.onTimeout(true, false, rerr) == timeoutWait {
					continue
				}
			default:
				d.s.fail(rerr)
			}
			return
		}
	}
}

// writeAll writes p to dst, riding out deadline expiries while the session
// is active. It reports false when the session is ending.
func (d *dir) writeAll(p []byte) bool {
	for len(p) > 0 {
		m, err := d.dst.Write(p)
		if m > 0 {
			d.n += int64(m)
			p = p[m:]
			d.progress()
		}
		if err != nil {
			if isTimeout(err) && d.onTimeout(false, false, err) == timeoutWait {
				continue
			}
			d.s.fail(err)
			return false
		}
		if m == 0 && len(p) > 0 {
			d.s.fail(io.ErrShortWrite)
			return false
		}
	}
	return true
}
