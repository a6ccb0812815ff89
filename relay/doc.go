// Package relay moves the bytes of proxied sessions with as few resources as
// possible. This documentation covers the TCP relay: [Pipe] moves bytes
// between the two connections of a TCP session (the client and the target
// of a CONNECT or BIND), keeping half-close.
//
// # TCP relay
//
// [Pipe] relays until both directions have seen EOF, an I/O error ends one
// of them, the idle timeout passes, or the context is done. It runs one
// direction in the calling goroutine and the other in exactly one new
// goroutine, and no goroutine outlives its return. Pipe closes neither
// connection; the caller closes both after it returns.
//
// # Parked directions (Options.ParkIdle, Linux splice path)
//
// A goroutine is the largest part of an idle session's memory: 2 KiB of
// stack at least, and a 0.5 KiB descriptor. With [Options.ParkIdle] the
// target->client direction has no goroutine once the target has been
// silent for [Options.ParkDelay] (100 ms by default; see "Park delay"):
// its socket is registered, one-shot, in one epoll instance shared by the
// process, whose single goroutine waits on it through the runtime poller
// (the epoll descriptor is an os.File, so no thread blocks). When the
// target sends, that goroutine starts one for the direction, which splices
// what comes and parks the direction again once the target has been silent
// for the park delay. When the
// client->target direction ends, Pipe's caller takes the other direction
// back and runs it to its end itself, with its deadlines. An idle session
// so costs one goroutine, its caller's: idle RSS per session went from 11.2
// to 8.75 KiB (socksbench's idle scenario, 9,000 sessions through sockd). The cost is an
// epoll_ctl per parking and an epoll_wait per wake, which the park delay
// keeps off sessions that are exchanging bytes. The trade-off: a parked direction does not
// wait on its connection, so closing target from outside while Pipe runs
// is noticed only when the client sends; cancel the context or close
// client instead (both stay prompt). The epoll instance stays open for the
// life of the process (one descriptor); its goroutine ends 100 ms after
// the last parked session.
//
// [Start] goes one step further: both directions park, and the caller's
// goroutine is not needed at all. Start returns at once and calls a
// function when the session is over; the idle timeout is a timer. An idle
// session then holds no goroutine and no stack: its memory is the two
// sockets' runtime state (net.Conn values and the runtime poller's
// descriptors, 512 bytes each) and the relay's own state. The
// socks.Server starts its CONNECT sessions this way when nothing of the
// user's runs around the built-in handler: 4.4 KiB of RSS per idle
// session parking at once, 4.7 to 4.8 with the default park delay,
// against 8.6 with Pipe and ParkIdle. Closing a connection from outside is then
// noticed, once its direction is parked, only when the other side sends;
// the context ends a session promptly.
//
// # Park delay
//
// Parking at every pause is cheap for a session that is idle for
// minutes and costly for one that is busy: each time a direction's source
// turned from drained to readable, a parked direction paid an epoll_ctl to
// re-arm, a wake-up of the parker's goroutine with its epoll_wait, and a
// new goroutine. Short sessions (a request and its answer) paid that on
// every message, and a transfer on every stall of its sender. So a
// direction first waits for its source in the runtime poller, on its
// goroutine, as without parking, under a read deadline that ends the
// delay; it parks only when that deadline finds it silent for the whole
// delay (and re-arms the deadline otherwise, once per delay at most). The
// gains, measured A/B against parking at once (sockd on one core, load on
// the other): system calls per short CONNECT fell from 36 to 32 (strace
// -c), proxy CPU per connection by 2-5%, and a one-stream transfer used
// 0.24 instead of 0.26 s of proxy CPU per GiB. The cost is memory while
// sessions are new: 9,000 sessions opened in a burst left 4.7 to 4.8 KiB
// of RSS per idle session instead of 4.4, the stacks of their first 100
// ms. A negative ParkDelay parks at once.
//
// # Readiness, then splice (Linux, both ends bare *net.TCPConn)
//
// io.Copy between two *net.TCPConn already uses splice(2) on Linux, but it
// holds a pipe (two descriptors, sized 1 MiB by the runtime) per direction for
// the whole copy, idle or not: six descriptors per session, so a proxy built
// on it runs out near 3,300 sessions under a 20,000 open-files limit.
//
// Pipe instead waits for readability through [syscall.RawConn.Read] with a
// callback. When the callback reports "not ready", the runtime's netpoller
// parks the goroutine, and nothing but the two sockets is held. When data
// is ready, the direction takes a pipe from a small process-wide pool,
// splices what the socket has into it (SPLICE_F_NONBLOCK|SPLICE_F_MOVE, up to
// the pipe's capacity), splices the pipe into the destination socket
// (waiting for writability through [syscall.RawConn.Write] on EAGAIN), and
// tries the source again. The pipe is given back to the pool as soon as the
// source has nothing more to give (EAGAIN), i.e. just before the direction
// would park; a pipe that still holds data (after an error) is closed, never
// pooled. The pool keeps at most [MaxIdlePipes] idle pipes and closes the
// rest, and closes a pipe that has been idle in it for 10 seconds, so that
// a process whose sessions are all quiet holds no pipe at all. The first 16 pipes open at a time are enlarged to 1 MiB, the rest
// keep the kernel's 64 KiB, so that the pipe pages the kernel charges to the
// user stay far from fs.pipe-user-pages-soft. Before the first wait, when a direction holds no pipe, a
// recv(MSG_PEEK|MSG_DONTWAIT) probe into a one-byte buffer tells "no data"
// (park without touching the pool), EOF and data apart.
//
// Descriptor budget: an idle session holds exactly its two sockets. A
// session that is moving bytes holds at most one pipe (two descriptors) per
// active direction, and the process holds at most 2*[MaxIdlePipes] more in
// the pool. [ReadPoolStats] reports the pool.
//
// If the first splice of a direction fails with EINVAL or ENOSYS, or no pipe
// can be created (EMFILE, ENFILE) while the pipe is empty, that direction
// continues with the copy loop below; [Result.Spliced] then reports false.
//
// # Copy loop (everything else)
//
// Wrapped connections (rate limiters, inspectors), TLS, Unix sockets and
// non-Linux systems use a copy loop. A generic net.Conn offers no way to wait
// for readability without reading, so the loop reads into a small buffer
// (512 bytes, part of the session) while it is "cold", and takes a 32 KiB
// buffer from a sync.Pool for the following reads only when a read fills the
// small buffer. It keeps that buffer while reads keep filling it ("hot"),
// and gives it back as soon as a read returns less than a full buffer, the
// usual sign that the source is drained. An idle session therefore normally
// holds no pooled buffer; the exception is a stream whose last read filled
// the large buffer exactly, which holds one buffer until its next read
// returns. Small interactive traffic never leaves the cold state. The cost
// is one extra small read and write per burst (and, over TLS, per record).
//
// # Half-close
//
// When a direction's source reports EOF, Pipe calls CloseWrite on the
// destination if it has one (*net.TCPConn, *net.UnixConn, *tls.Conn, or any
// interface{ CloseWrite() error }) and keeps relaying the other direction. A
// destination without CloseWrite (for example a struct that embeds net.Conn
// and nothing else) never learns of the EOF; wrappers that want half-close
// should forward CloseWrite.
//
// # Idle timeout
//
// With [Options.IdleTimeout] set, each direction records the monotonic time
// of its last progress in an atomic int64. Pipe sets a read deadline on each
// source and a write deadline on each destination once, at the start, and
// never per chunk. When a deadline fires, the direction looks at the most
// recent progress of BOTH directions: if that was less than IdleTimeout ago,
// it moves the deadline to that time plus IdleTimeout and waits again (the
// splice path keeps splicing: deadlines govern the RawConn waits too); only
// when neither direction moved a byte for IdleTimeout does the session end
// with [ErrIdleTimeout]. A stream moving bytes therefore costs one deadline
// update per IdleTimeout per direction.
//
// # Ending
//
// Pipe owns the deadlines of both connections while it runs. To end a
// session (first error, cancellation, idle timeout) it records the cause and
// sets both connections' deadlines in the past, which wakes every blocked
// read, write and RawConn wait at once; the deadlines stay in the past when
// Pipe returns. Cancellation is observed with context.AfterFunc, so a
// session costs no goroutine for it until the context is done.
//
// # UDP associations
//
// [Associate] is the SOCKS5 UDP ASSOCIATE engine: it relays datagrams
// between a client-facing and a peer-facing UDP socket, accepting client
// datagrams only from the control connection's IP (and the declared or
// first-seen port), and ends with the TCP control connection. It
// reassembles RFC 1928 fragments (FRAG 1..127, end bit 0x80, a timer, a
// bounded queue) rather than dropping them; no peer we know of sends them
// (Dante drops every fragment). The hot path reads into a pooled buffer
// with room in front of the payload, writes the reply header there and
// sends with one sendto: no allocation and no copy per datagram. See
// Associate's documentation for the details.
//
// By default an association sleeps in the runtime's network poller between
// datagrams, like every other connection. [UDPOptions.BusyPoll] makes it
// keep polling its sockets for a while after each datagram instead: on the
// 2-core VM we measure on, a 64-byte round trip through the daemon fell
// from 121-135 µs (Dante's sockd: 124-130 µs) to 37-39 µs, because most of
// a round trip was spent waking an idle core. It keeps a core busy while
// traffic flows and delays other sessions on the same core, so it is off
// unless asked for (sockd -udp-busy-poll).
//
// TCP sessions have a process-wide counterpart in the server package
// (socks.Server.BusyPoll): there the Go runtime's own poller keeps
// polling, so no session's goroutine spins and none delays another. The
// relay's part is to say when: a direction's first read of a small
// message (under BusyPollChunk), and each small read after another, keep
// it polling; the reads of a bulk transfer do not.
package relay
