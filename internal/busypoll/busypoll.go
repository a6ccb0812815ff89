// Package busypoll keeps the Go runtime's network poller polling, instead
// of sleeping in the kernel, for a short window after network activity.
//
// When every goroutine of a Go process is waiting for the network, the
// runtime's last running thread blocks in epoll_wait, and its CPU goes
// idle. The next packet then has to wake that thread, and, on a virtual
// machine, the virtual CPU: an inter-processor interrupt that the
// hypervisor delivers, a context switch, and the idle loop's exit. A
// SOCKS5 CONNECT with a 64-byte echo makes a proxy wait, and be woken,
// several times; on the 2-CPU virtual machine this project is measured on,
// avoiding those wake-ups took a quarter off the proxy's median latency
// with one client at a time.
//
// Linux's own busy polling (SO_BUSY_POLL, net.core.busy_poll) spins on a
// network device's receive queue (its NAPI instance); loopback traffic has
// none to spin on, and the Go runtime has no such setting. This package
// gets the effect from the outside: it registers an eventfd with the
// runtime's own epoll instance, level-triggered, and makes it readable
// while the window is open. Every epoll_wait of the runtime then returns
// at once, so the runtime's scheduler loops (running timers, polling the
// network and finding work) instead of sleeping, and a packet that
// arrives is picked up by the next poll, with nothing to wake. When no
// Kick has come for a whole window, the eventfd is drained and the
// runtime sleeps as usual.
//
// This leans on two things the runtime does without promising them: that
// os.NewFile registers a non-blocking descriptor with the runtime's epoll
// instance, and that an event for a descriptor no goroutine waits on
// only marks it ready. Both hold in go1.26, which this module is built
// and tested with. Enable reports an error, and changes nothing, when the
// registration cannot be found, and the package's tests fail if the
// runtime stops spinning.
//
// The cost is CPU: while the window is open, one thread of the process
// spins, taking a core that busy processes sharing it would have used.
// Kick only where latency matters and traffic is light, such as at accept
// and for small messages; a bulk transfer, which keeps the process busy
// anyway, should not keep it spinning in its short gaps.
//
// It is process-wide, as the runtime's poller is: Enable and Disable
// count, and the widest window asked for applies. Linux only: it finds the
// runtime's epoll instance through /proc/self/fdinfo, and Enable reports
// an error where it cannot.
package busypoll

import "time"

// Enable turns busy polling on for the process, with Kick keeping the
// runtime polling for window after it is called. Each successful Enable
// must be matched by one Disable.
func Enable(window time.Duration) error { return enable(window) }

// Disable undoes one Enable; the last one turns busy polling off.
func Disable() { disable() }

// Enabled reports whether busy polling is on: whether Kick does anything.
func Enabled() bool { return enabled() }

// Kicks returns how many Kicks found busy polling on, over the life of
// the process: for tests and diagnostics.
func Kicks() uint64 { return kicks() }

// Kick records network activity: the runtime keeps polling until a window
// has passed without a Kick. Without Enable it does nothing but one
// atomic load.
func Kick() { kick() }
