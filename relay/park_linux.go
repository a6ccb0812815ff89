package relay

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Parking (Options.ParkIdle, and both directions under Start) lets a
// direction of a session wait for its source without a goroutine. A parked direction is a
// one-shot registration in one process-wide epoll instance; the parker's
// goroutine waits on that instance through the runtime poller (the epoll
// descriptor is an os.File, so no thread blocks) and starts a goroutine for
// a direction when its source turns readable. That goroutine splices what
// is there and, when the source is drained, parks the direction again and
// ends. Under Pipe an idle session so keeps one goroutine, its caller's,
// instead of two; under Start none.
//
// Ownership of a parked direction moves by compare-and-swap on dir.park:
// the goroutine that moves it from parkParked to parkRunning (the parker,
// on readiness) or to parkSticky (Pipe's caller, once the other direction
// is done) owns it. parkSticky means "never park again": the owner waits in
// the runtime poller as a non-parking direction does, with deadlines.

// parkLinger is how long the parker's goroutine stays after the last
// parked direction is gone, so that a steady stream of short sessions does
// not start and end it for each one.
const parkLinger = 100 * time.Millisecond

// parker is the process-wide epoll instance for parked directions.
type parker struct {
	mu      sync.Mutex
	f       *os.File // nil until first use
	rc      syscall.RawConn
	epfd    int
	dirs    map[uint64]*dir // enrolled directions, by their epoll data
	nextID  uint64
	running bool // the loop goroutine exists
}

var theParker parker

// parkedDirs counts directions that are parked right now, and parkWakes
// the directions the parker has woken. For tests.
var parkedDirs, parkWakes atomic.Int64

// enroll prepares d to be parked. It returns false when the epoll instance
// cannot be made (the descriptor limit): d then runs as a normal direction.
func (p *parker) enroll(d *dir) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil && !p.setupLocked() {
		return false
	}
	p.nextID++
	d.parkID = p.nextID
	p.dirs[d.parkID] = d
	switch {
	case !p.running:
		p.running = true
		_ = p.f.SetReadDeadline(time.Time{})
		go p.loop()
	case len(p.dirs) == 1:
		_ = p.f.SetReadDeadline(time.Time{}) // cancel the linger
	}
	return true
}

func (p *parker) setupLocked() bool {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	if unix.SetNonblock(epfd, true) != nil {
		unix.Close(epfd)
		return false
	}
	// The instance stays open for the life of the process: one descriptor,
	// like the runtime's own poller.
	f := os.NewFile(uintptr(epfd), "relay-park-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return false
	}
	p.f, p.rc, p.epfd = f, rc, epfd
	p.dirs = make(map[uint64]*dir)
	return true
}

// forget drops d after its session has ended. Its socket may stay in the
// epoll set (disarmed, or armed under an ID that is no longer known) until
// it is closed, which removes it.
func (p *parker) forget(d *dir) {
	p.mu.Lock()
	delete(p.dirs, d.parkID)
	if len(p.dirs) == 0 && p.running {
		_ = p.f.SetReadDeadline(time.Now().Add(parkLinger))
	}
	p.mu.Unlock()
}

// arm registers d's source for one readiness event. It runs after d has
// been handed to the parker, so another goroutine may own d already: arm
// reads only fields that no owner writes (sp.rsrc, parkID) and keeps its
// state in locals. (A version with the callback and its result bound in
// spliceState, to save the closure, raced with the next owner's arm.)
func (p *parker) arm(d *dir, add bool) error {
	var err error
	cerr := d.sp.rsrc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{
			Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
			Fd:     int32(uint32(d.parkID)),
			Pad:    int32(uint32(d.parkID >> 32)),
		}
		op := unix.EPOLL_CTL_MOD
		if add {
			op = unix.EPOLL_CTL_ADD
		}
		err = unix.EpollCtl(p.epfd, op, int(fd), &ev)
		if add && err == unix.EEXIST {
			// Left by an earlier Pipe on the same connection.
			err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
		}
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// loop waits for parked sources and starts a goroutine for each that turns
// readable. It ends when no direction has been enrolled for parkLinger.
//
// It harvests the instance inside one RawConn.Read: the callback takes
// what is ready and returns false to wait for the next edge of the epoll
// descriptor, without an epoll_wait that finds nothing. No event is lost
// that way: one that is queued after the harvest wakes the descriptor's
// waiters again, which the runtime poller records for the wait. A new
// Read would reset that record (prepareRead), so only the first call of
// each Read must look first.
func (p *parker) loop() {
	var (
		evs   [64]unix.EpollEvent
		ready [64]*dir
	)
	harvest := func(fd uintptr) bool {
		for {
			n, err := unix.EpollWait(int(fd), evs[:], 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n <= 0 {
				return false
			}
			p.dispatch(evs[:n], &ready)
			if n < len(evs) {
				return false
			}
		}
	}
	for {
		// Read returns only when the linger deadline has passed (the
		// callback never reports done).
		_ = p.rc.Read(harvest)
		p.mu.Lock()
		if len(p.dirs) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		_ = p.f.SetReadDeadline(time.Time{})
		p.mu.Unlock()
	}
}

// dispatch starts a goroutine for each parked direction among evs.
func (p *parker) dispatch(evs []unix.EpollEvent, ready *[64]*dir) {
	m := 0
	p.mu.Lock()
	for _, ev := range evs {
		id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		if d := p.dirs[id]; d != nil && d.park.CompareAndSwap(parkParked, parkRunning) {
			ready[m] = d
			m++
		}
	}
	p.mu.Unlock()
	for i, d := range ready[:m] {
		ready[i] = nil
		parkedDirs.Add(-1)
		parkWakes.Add(1)
		go d.resume()
	}
}

// parkNow parks d, which the calling goroutine owns. True means the
// goroutine no longer owns d (it is parked, or Pipe's caller took it);
// false means it still does and must run d on, without parking again.
func (d *dir) parkNow() bool {
	add := !d.parkArmed
	d.parkArmed = true // written before ownership is given away
	d.rdlStale = d.s.parkAfter > 0
	if !d.park.CompareAndSwap(parkRunning, parkParked) {
		d.parkArmed = !add
		return false // parkSticky: Pipe's caller waits for this goroutine to finish d
	}
	parkedDirs.Add(1)
	// fail may have looked for parked directions before d was parked (it
	// sets stopped before it looks, so one of the two sees the other); then
	// d must not wait, and neither when it cannot be armed.
	if !d.s.stopped.Load() && theParker.arm(d, add) == nil {
		return true
	}
	if !d.park.CompareAndSwap(parkParked, parkSticky) {
		return true // fail or Pipe's caller took it meanwhile; its new owner ends it
	}
	parkedDirs.Add(-1)
	d.parkArmed = !add
	return false
}

// resume runs a parked direction whose source turned readable, on the
// goroutine the parker started for it.
func (d *dir) resume() {
	d.sp.skipProbe = true
	d.lastActive = nanotime()
	d.runParking()
}

// runParking runs d until it ends, or until its source is drained and it
// parks.
func (d *dir) runParking() {
	for {
		switch d.sp.run(d) {
		case runIdle:
			if d.parkNow() {
				return
			}
			continue
		case runFallback:
			d.fellBack = true
			d.copyLoop()
		}
		d.s.dirDone()
		return
	}
}

// takeParked is called by Pipe's caller when the other direction is done.
// It makes d run to its end without parking again, on the caller's
// goroutine when d is parked (it returns after d has finished then), or on
// the goroutine that runs it now.
func (d *dir) takeParked() {
	for {
		switch st := d.park.Load(); st {
		case parkParked:
			if d.park.CompareAndSwap(parkParked, parkSticky) {
				parkedDirs.Add(-1)
				d.run()
				d.s.dirDone()
				return
			}
		case parkRunning:
			if d.park.CompareAndSwap(parkRunning, parkSticky) {
				return
			}
		default:
			return
		}
	}
}

// parkable reports whether d, on the splice path, should park instead of
// waiting in the runtime poller.
func (d *dir) parkable() bool { return d.park.Load() == parkRunning }

// unparkAll ends the parked directions of a failing session: nothing else
// would wake them. A direction taken here has not run since it parked;
// it ends as it is.
func (s *session) unparkAll() {
	for i := range s.dirs {
		d := &s.dirs[i]
		if d.park.CompareAndSwap(parkParked, parkSticky) {
			parkedDirs.Add(-1)
			if s.async {
				// Not inline: fail may run in the context's AfterFunc, and
				// completing waits for that.
				go s.dirDone()
			} else {
				s.dirDone()
			}
		}
	}
}
