package relay

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// spliceFlags are used for both halves of a move. NONBLOCK makes the pipe
// side non-blocking (the sockets already are, the runtime sets O_NONBLOCK).
const spliceFlags = unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MOVE

// Pipe capacity, which is also the most one splice moves. While fewer than
// largePipes pipes are open, a new pipe is enlarged to largePipeSize with
// F_SETPIPE_SZ (1 MiB moved about 1.4 times the bytes per CPU second of the
// default 64 KiB on loopback); later ones keep the kernel default. The
// kernel charges pipe pages to the user, and past fs.pipe-user-pages-soft
// (64 MiB by default) it creates an unprivileged user's new pipes with only
// two pages, so most pipes stay small to keep a busy proxy well under it.
var (
	largePipeSize = 1 << 20
	largePipes    = 16
)

// spliceState is the splice-path state of one direction.
type spliceState struct {
	rsrc, rdst syscall.RawConn

	p       *pipe // held only while bytes are moving
	pending int   // bytes in p not yet spliced out
	calls   int   // callback invocations in the current RawConn.Read
	moved   bool  // some splice from src has succeeded
	idle    bool  // a parkable direction found its source drained
	// skipProbe: the next wait starts with a splice, not a probe (the
	// parker saw the source readable).
	skipProbe bool
	eof       bool
	rerr      error // error from the source side (probe, pipe2, splice in)
	werr      error // error from the destination side (splice out)
	pipeErr   bool  // rerr came from creating a pipe

	d       *dir
	readFn  func(uintptr) bool // bound once per direction: no allocation per chunk
	writeFn func(uintptr) bool

	peek [1]byte
}

// setupSplice enables the splice path when both ends are bare TCP
// connections.
func setupSplice(s *session) {
	c, ok1 := s.client.(*net.TCPConn)
	t, ok2 := s.target.(*net.TCPConn)
	if !ok1 || !ok2 {
		return
	}
	rc, err1 := c.SyscallConn()
	rt, err2 := t.SyscallConn()
	if err1 != nil || err2 != nil {
		return
	}
	for i, rw := range [2][2]syscall.RawConn{{rc, rt}, {rt, rc}} {
		sp := &spliceState{rsrc: rw[0], rdst: rw[1], d: &s.dirs[i]}
		sp.readFn = sp.onReadable
		sp.writeFn = sp.onWritable
		s.dirs[i].sp = sp
	}
}

// run moves bytes with splice until the direction ends (runDone). It
// returns runFallback when the direction must continue with the copy loop
// instead (nothing is lost: the pipe is empty at that point), and runIdle
// when a parkable direction has drained its source (no pipe is held then).
func (sp *spliceState) run(d *dir) runResult {
	defer func() {
		if sp.p != nil {
			if sp.pending == 0 {
				putPipe(sp.p)
			} else {
				discardPipe(sp.p) // never pool a pipe that holds data
			}
			sp.p = nil
		}
	}()
	for {
		if d.rdlStale {
			d.rdlStale = false
			switch d.setDeadline(true, true) {
			case timeoutEnd:
				return runDone
			case timeoutPark:
				// lastActive was set when the direction started or
				// resumed; only a scheduling delay longer than the park
				// delay gets here. Parking again is harmless: the
				// one-shot registration reports data that is waiting.
				return runIdle
			}
		}
		sp.calls, sp.eof, sp.rerr, sp.pipeErr, sp.idle = 0, false, nil, false, false
		err := sp.rsrc.Read(sp.readFn)
		switch {
		case err != nil: // the wait failed: deadline, or the conn was closed
			if isTimeout(err) {
				switch d.onTimeout(true, true, err) {
				case timeoutWait:
					continue
				case timeoutPark:
					return runIdle
				}
			}
			d.s.fail(err)
			return runDone
		case sp.rerr != nil:
			if sp.pipeErr && (errors.Is(sp.rerr, unix.EMFILE) || errors.Is(sp.rerr, unix.ENFILE)) {
				return runFallback
			}
			if !sp.moved && (errors.Is(sp.rerr, unix.EINVAL) || errors.Is(sp.rerr, unix.ENOSYS)) {
				return runFallback
			}
			d.s.fail(opError("read", d.src, sp.rerr))
			return runDone
		case sp.eof:
			d.finish()
			return runDone
		case sp.idle:
			return runIdle
		}
		d.progress()
		for sp.pending > 0 {
			sp.werr = nil
			err := sp.rdst.Write(sp.writeFn)
			if err != nil {
				if isTimeout(err) && d.onTimeout(false, false, err) == timeoutWait {
					continue
				}
				d.s.fail(err)
				return runDone
			}
			if sp.werr != nil {
				d.s.fail(opError("write", d.dst, sp.werr))
				return runDone
			}
		}
	}
}

// onReadable is the RawConn.Read callback: it returns false to park until
// the source is readable, true when it has a result (bytes in the pipe, EOF
// or an error).
func (sp *spliceState) onReadable(fd uintptr) bool {
	sp.calls++
	skipProbe := sp.skipProbe
	sp.skipProbe = false
	if sp.p == nil {
		if sp.calls == 1 && !skipProbe {
			// Not woken by the netpoller: data may or may not be there.
			// Probe without taking a pipe, so an idle direction never
			// touches the pool.
			for {
				n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&sp.peek[0])), 1,
					unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
				switch errno {
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					parkedProbes.Add(1)
					return sp.goIdle()
				case 0:
				default:
					sp.rerr = os.NewSyscallError("recvfrom", errno)
					return true
				}
				if n == 0 {
					sp.eof = true
					return true
				}
				break // data: take a pipe
			}
		}
		p, err := getPipe()
		if err != nil {
			sp.rerr, sp.pipeErr = err, true
			return true
		}
		sp.p = p
	}
	for {
		n, err := unix.Splice(int(fd), nil, sp.p.w, nil, sp.p.size, spliceFlags)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			// Drained: give the (empty) pipe back before parking.
			putPipe(sp.p)
			sp.p = nil
			return sp.goIdle()
		case err != nil:
			sp.rerr = os.NewSyscallError("splice", err)
		case n == 0:
			sp.eof = true
		default:
			sp.moved = true
			sp.pending = int(n)
			sp.d.read(int(n))
		}
		return true
	}
}

// goIdle is what onReadable returns for a drained source: false to wait in
// the runtime poller (for a parkable direction with a park delay, under the
// deadline that ends the delay), or, for a parkable direction without one,
// true with idle set, so that run returns and the direction is parked.
func (sp *spliceState) goIdle() bool {
	if sp.d.parkable() && sp.d.s.parkAfter == 0 {
		sp.idle = true
		return true
	}
	return false
}

// onWritable is the RawConn.Write callback: it splices the pipe into the
// destination until the pipe is empty, returning false to park on EAGAIN.
func (sp *spliceState) onWritable(fd uintptr) bool {
	for sp.pending > 0 {
		n, err := unix.Splice(sp.p.r, nil, int(fd), nil, sp.pending, spliceFlags)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil:
			sp.werr = os.NewSyscallError("splice", err)
			return true
		case n == 0:
			sp.werr = os.NewSyscallError("splice", unix.EIO) // cannot happen with data in the pipe
			return true
		}
		sp.pending -= int(n)
		sp.d.n += int64(n)
		sp.d.progress()
	}
	return true
}

func opError(op string, c net.Conn, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// parkedProbes counts probes that found no data, i.e. directions that went
// to wait without a pipe. For tests.
var parkedProbes atomic.Int64

// pipe is one kernel pipe used to splice between sockets.
type pipe struct {
	r, w      int
	size      int   // capacity in bytes
	idleSince int64 // nanotime when it was last given back
}

// pool is the process-wide pipe pool.
var pool struct {
	mu    sync.Mutex
	idle  []*pipe // a stack: the longest idle first
	inUse int

	trim      *time.Timer
	trimArmed bool
}

// idlePipeTTL: a pipe idle in the pool this long is closed, so that once
// every session has gone quiet the process holds no pipe at all, only its
// sessions' sockets.
var idlePipeTTL = 10 * time.Second

func getPipe() (*pipe, error) {
	pool.mu.Lock()
	if n := len(pool.idle); n > 0 {
		p := pool.idle[n-1]
		pool.idle[n-1] = nil
		pool.idle = pool.idle[:n-1]
		pool.inUse++
		pool.mu.Unlock()
		return p, nil
	}
	large := pool.inUse+len(pool.idle) < largePipes
	pool.inUse++
	pool.mu.Unlock()
	size := 0
	if large {
		size = largePipeSize
	}
	p, err := newPipe(size)
	if err != nil {
		pool.mu.Lock()
		pool.inUse--
		pool.mu.Unlock()
		return nil, err
	}
	return p, nil
}

// newPipe creates a pipe, enlarged to size bytes when size > 0.
func newPipe(size int) (*pipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	p := &pipe{r: fds[0], w: fds[1], size: 64 << 10}
	if size > 0 {
		// Fails with EPERM past the per-user pipe limits; the size the
		// pipe has is fine then.
		_, _ = unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, size)
	}
	if sz, err := unix.FcntlInt(uintptr(p.w), unix.F_GETPIPE_SZ, 0); err == nil && sz > 0 {
		p.size = sz
	}
	return p, nil
}

// putPipe returns an empty pipe to the pool, or closes it when the pool
// already holds MaxIdlePipes.
func putPipe(p *pipe) {
	pool.mu.Lock()
	pool.inUse--
	if len(pool.idle) < MaxIdlePipes {
		p.idleSince = nanotime()
		pool.idle = append(pool.idle, p)
		if !pool.trimArmed {
			pool.trimArmed = true
			if pool.trim == nil {
				pool.trim = time.AfterFunc(idlePipeTTL, trimPool)
			} else {
				pool.trim.Reset(idlePipeTTL)
			}
		}
		pool.mu.Unlock()
		return
	}
	pool.mu.Unlock()
	p.close()
}

// trimPool closes the pipes that have been idle for idlePipeTTL, and runs
// again when the next one will have been.
func trimPool() {
	pool.mu.Lock()
	now := nanotime()
	n := 0
	for n < len(pool.idle) && now-pool.idle[n].idleSince >= int64(idlePipeTTL) {
		n++
	}
	stale := make([]*pipe, n)
	copy(stale, pool.idle[:n])
	rest := copy(pool.idle, pool.idle[n:])
	clear(pool.idle[rest:])
	pool.idle = pool.idle[:rest]
	if rest > 0 {
		pool.trim.Reset(time.Duration(pool.idle[0].idleSince + int64(idlePipeTTL) - now))
	} else {
		pool.trimArmed = false
	}
	pool.mu.Unlock()
	for _, p := range stale {
		p.close()
	}
}

// discardPipe closes a pipe that was lent out (it may hold data).
func discardPipe(p *pipe) {
	pool.mu.Lock()
	pool.inUse--
	pool.mu.Unlock()
	p.close()
}

func (p *pipe) close() {
	_ = unix.Close(p.r)
	_ = unix.Close(p.w)
}

func readPoolStats() PoolStats {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	return PoolStats{Idle: len(pool.idle), InUse: pool.inUse}
}

// drainPool closes every idle pipe. For tests.
func drainPool() {
	pool.mu.Lock()
	idle := pool.idle
	pool.idle = nil
	pool.mu.Unlock()
	for _, p := range idle {
		p.close()
	}
}
