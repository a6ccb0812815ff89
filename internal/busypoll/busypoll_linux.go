package busypoll

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// poller is the process's busy poller.
type poller struct {
	efd  int      // readable (a non-zero count) while the window is open
	file *os.File // owns efd, which the runtime registered with its poller

	window   atomic.Int64  // nanoseconds
	open     atomic.Bool   // efd is readable: the runtime is polling
	activity atomic.Uint64 // Kicks so far, while enabled
	seen     atomic.Uint64 // activity when the timer last looked
	timer    *time.Timer   // closes the window
}

var (
	mu      sync.Mutex // guards users, made and the stores of current
	users   int
	made    *poller // once made, kept: its eventfd is never closed
	current atomic.Pointer[poller]
)

func enable(window time.Duration) error {
	if window <= 0 {
		return fmt.Errorf("busypoll: window %v is not positive", window)
	}
	mu.Lock()
	defer mu.Unlock()
	if made == nil {
		p, err := newPoller()
		if err != nil {
			return err
		}
		made = p
	}
	if users == 0 || int64(window) > made.window.Load() {
		made.window.Store(int64(window))
	}
	users++
	current.Store(made)
	return nil
}

// disable turns Kick off with the last user. The eventfd stays open and
// registered, unreadable: a Kick that loaded the poller just before may
// still open a window, and its timer then closes it as usual, whereas
// closing the descriptor would let that Kick write to whatever file got
// its number next.
func disable() {
	mu.Lock()
	defer mu.Unlock()
	if users == 0 {
		return
	}
	if users--; users > 0 {
		return
	}
	current.Store(nil)
	if made.timer.Stop() {
		made.close()
	}
}

func enabled() bool { return current.Load() != nil }

func newPoller() (*poller, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	// NewFile makes a non-blocking descriptor pollable: the runtime adds it
	// to its epoll instance (edge-triggered, with its own event data).
	f := os.NewFile(uintptr(efd), "busypoll")
	epfd, data, err := runtimeRegistration(efd)
	if err != nil {
		f.Close()
		return nil, err
	}
	// The same event data, so the runtime takes the event for the File's
	// own (which no goroutine waits on); level-triggered and input only,
	// so that it is reported by every epoll_wait while the count is not
	// zero, and by none while it is.
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(uint32(data)), Pad: int32(uint32(data >> 32))}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_MOD, efd, &ev); err != nil {
		f.Close()
		return nil, fmt.Errorf("busypoll: %w", os.NewSyscallError("epoll_ctl", err))
	}
	p := &poller{efd: efd, file: f}
	p.timer = time.AfterFunc(time.Hour, p.check)
	p.timer.Stop()
	return p, nil
}

// runtimeRegistration finds the epoll instance that holds fd, which the
// runtime has just added to its own, and the event data it used, from
// the kernel's listing of each epoll instance's targets in
// /proc/self/fdinfo (the "tfd:" lines, there since Linux 3.8).
func runtimeRegistration(fd int) (epfd int, data uint64, err error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, 0, fmt.Errorf("busypoll: %w", err)
	}
	want := strconv.Itoa(fd)
	for _, e := range ents {
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if d, ok := targetData("/proc/self/fdinfo/"+e.Name(), want); ok {
			return n, d, nil
		}
	}
	return 0, 0, fmt.Errorf("busypoll: the runtime's epoll instance was not found (no eventpoll in /proc/self/fd lists fd %d)", fd)
}

// targetData returns the event data of target fd want in an epoll
// instance's fdinfo file, whose lines for targets read
//
//	tfd:        7 events:       19 data:   7f1c2e0a0000  pos:0 ino:... sdev:...
func targetData(path, want string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[0] != "tfd:" || fields[1] != want || fields[4] != "data:" {
			continue
		}
		d, err := strconv.ParseUint(fields[5], 16, 64)
		return d, err == nil
	}
	return 0, false
}

func kicks() uint64 {
	mu.Lock()
	defer mu.Unlock()
	if made == nil {
		return 0
	}
	return made.activity.Load()
}

func kick() {
	p := current.Load()
	if p == nil {
		return
	}
	p.activity.Add(1)
	if p.open.Load() || !p.open.CompareAndSwap(false, true) {
		return
	}
	one := [8]byte{1}
	_, _ = unix.Write(p.efd, one[:]) // cannot fail: the count stays at most 1
	p.timer.Reset(time.Duration(p.window.Load()))
}

// check runs when a window has passed: it opens another when there was a
// Kick in this one, and otherwise drains the eventfd. A Kick racing with
// the close may find the window still open and be lost; the next one
// opens it again.
func (p *poller) check() {
	if a := p.activity.Load(); a != p.seen.Load() {
		p.seen.Store(a)
		p.timer.Reset(time.Duration(p.window.Load()))
		return
	}
	p.close()
}

// close drains the eventfd, so that the runtime sleeps again.
func (p *poller) close() {
	var buf [8]byte
	_, _ = unix.Read(p.efd, buf[:])
	p.open.Store(false)
}
