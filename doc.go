// Package socks is Virgil's SOCKS toolkit: an embeddable proxy server for
// SOCKS4, SOCKS4a, SOCKS5 (RFC 1928, with RFC 1929 username/password) and
// HTTP CONNECT on one listener, built from small packages that each do one
// job.
//
// # Architecture
//
// The leaves know one thing each and import nothing of ours but auth:
//
//	socks4, socks5, httpconnect   wire codecs: parse and write handshakes, requests, replies
//	msproxy                       MS Proxy v2: codec, client and server
//	auth                          identities; username/password stores (memory, htpasswd)
//	relay                         moving bytes: a TCP pipe that keeps half-close and zero-copy,
//	                              and the UDP association engine
//
// This package is the hub. A [Server] takes each accepted connection
// through a pipeline:
//
//	accept
//	  -> ConnMiddleware chain   client-rules: before any protocol byte is read
//	  -> protocol detection     first byte: 0x04 SOCKS4/4a, 0x05 SOCKS5, A-Z HTTP CONNECT
//	  -> handshake and auth     method negotiation, RFC 1929 or Proxy-Authorization
//	  -> *Request               the same for every protocol
//	  -> Middleware chain       socks-rules: per request; refuse with a *ReplyError
//	  -> Handler                CONNECT: dial through Server.Dialer, reply, relay;
//	                            BIND: listen, two replies, relay; UDP ASSOCIATE: relay datagrams
//
// Middleware and ConnMiddleware wrap handlers the way net/http handlers are
// wrapped; [Chain] composes them with the first one outermost. A handler
// answers through a [ReplyWriter] with a protocol-neutral [ReplyCode] that
// each protocol maps to its own wire value, so a rule written once refuses
// a SOCKS4, SOCKS5 or HTTP client in each one's terms.
//
// # Client side
//
// [Dialer] makes connections through a SOCKS4, SOCKS4a, SOCKS5, HTTP CONNECT
// or MS Proxy v2 proxy; it is a proxy.ContextDialer, so it serves as an
// http.Transport's DialContext and as a Server's Dialer (chaining to an
// upstream). [Dialer.Listen] is BIND as a net.Listener and
// [Dialer.ListenPacket] UDP ASSOCIATE as a net.PacketConn. Package dialer
// builds Dialers from URLs, chains them, and routes by Dante-style route
// tables.
//
// # Performance
//
// A handshake is parsed from one pooled buffer that is handed back before
// the relay starts. Serve hands a CONNECT session whose handler chain is
// the built-in one to relay.Start, and the session's goroutine ends: once
// both sides have been silent for Server.ParkDelay (100 ms by default), an
// idle session holds its two sockets and a little state, but no
// goroutine, no buffer and no pipe (4.7 to 4.8 KiB of RSS per idle
// session in socksbench's idle scenario, 4.4 with ParkDelay negative). With a
// Handler, Middleware or ConnMiddleware of the user's, or through
// ServeConn, the session keeps its goroutine for the whole relay, since
// that code may act after the relay returns: 4 KiB of stack (the dial and
// the connect log line, which would grow it to 8 KiB, run on a small pool
// of goroutines of the server's, and the relay's target->client direction
// waits in a shared epoll instance instead of on a goroutine, see
// relay.Options.ParkIdle). When nothing
// wraps the connections, the relay moves bytes with splice(2) (see package
// relay).
//
// Under light load, a Go server spends a surprising share of its CPU in the
// runtime's monitor thread (sysmon): it sleeps deeply whenever the process
// is idle, the first system call of the next burst of work wakes it, and it
// then polls every 20 µs, preempting the serving thread, until the process
// is idle again. A proxy with one client at a time is idle several times
// per connection, and this cost a fifth to a quarter of its CPU per connection
// (examples/sockd, pinned to one core). The only runtime setting that
// avoids it is GODEBUG=schedtrace=2147483647 in the environment the program
// starts with (the monitor then backs off to one run every 10 ms instead of
// sleeping deeply, and a scheduler trace line is printed once every 24.8
// days); examples/sockd re-executes itself with it unless told not to
// (-low-latency=false). It makes no difference under heavy load, where the
// process is never idle.
//
// Where the system's TCP congestion control is BBR, as on many servers,
// every socket paces its sends: it holds segments back and releases them
// from a timer. On loopback there is no bottleneck queue for pacing to
// protect, and it made relayed bulk transfers slower and costlier. Arming
// the timer costs CPU, most of all in a virtual machine, where it is a
// call into the hypervisor; and segments that leave from the timer or
// from acknowledgement processing on another CPU go through that CPU's
// loopback queue, arrive out of order with the ones sent from the relay's
// own CPU, and are retransmitted for nothing. So Listen, for a loopback
// address, and the default dialer of Server and Dialer, for a loopback
// target or proxy, switch a BBR socket to reno before it connects
// (NoLoopbackPacing, which embedders can use as the Control of their own
// net.Dialer or net.ListenConfig). With examples/sockd pinned to one core and socksbench
// on the other, three alternated 4 GiB single-stream runs gave
// 1,572-1,821 MiB/s up and 1,697-1,842 down, against 1,260-1,362 and
// 1,418-1,624 without it, at 0.21-0.26 s of proxy CPU per GiB against
// 0.29-0.36, and 163-244 retransmitted segments per run against
// 2,854-4,046. Sockets on other addresses, and sockets whose congestion
// control does not pace, keep theirs; a listener on a wildcard address
// cannot tell its loopback clients apart before they connect, so it is
// left as it is.
//
// A lightly loaded proxy waits many times per connection: for the client's
// request, for the target's reply, for the client again. Each time, the Go
// runtime's last running thread blocks in epoll_wait and its CPU goes
// idle, and the next packet has to wake both; in a virtual machine that is
// an interrupt delivered by the hypervisor, a context switch and the idle
// loop's exit, and on the 2-CPU machine this project is measured on it
// was about a quarter of the proxy's latency at one client at a time.
// Server.BusyPoll
// keeps the runtime's poller polling instead, for a short window after
// each accepted connection and each small relayed message (a direction's
// first read under relay.BusyPollChunk, or one after another such read;
// not the reads of a bulk transfer). The runtime has no setting for this;
// the server registers an eventfd with the runtime's own epoll instance,
// level-triggered, and keeps it readable while the window is open, so
// that the runtime's epoll_wait returns at once and its scheduler loops.
// examples/sockd turns it on with -busy-poll (200 µs in the benchmark).
// Pinned to one core, with socksbench's rate scenario at one worker on the
// other, a 200 µs window took the median latency from 338-342 µs to 245-251 and p99 from
// 465-481 to 387-403 (three alternated rounds each), ahead of microsocks'
// 268-305 and 432-465, at 256-260 µs of proxy CPU per connection against
// 198-203: the window's spinning is what fills the rest of the core. At
// lighter loads it roughly doubles the CPU the proxy uses (one connection
// at a time, 10 ms apart: about 6% of a core against 3%; 1 ms apart: 26%
// against 13%). It changes nothing at 64 workers, where the process is
// never idle, and nothing while sessions are idle, since nothing kicks it
// then. It is for a proxy with a core of its own: on cores shared with
// busy processes the spinning thread takes their CPU, and with nothing
// pinned, the daemon and socksbench sharing both cores, one-worker p99
// rose from 627-651 µs to 3.7-3.9 ms. So it is off unless asked for.
//
// # Differences from Dante
//
// SOCKS4a and HTTP CONNECT are served; unknown SOCKS5 commands and address
// types get replies 7 and 8 as RFC 1928 says, where Dante closes silently;
// when authentication is required a SOCKS4 client is refused, since it
// cannot authenticate (Dante's CVE-2024-54662 let it through).
package socks
