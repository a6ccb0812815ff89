// Package msproxy speaks Microsoft Proxy Server 2.0's "Winsock proxy" protocol (MS Proxy v2)
// as Dante's client put it on the wire until Dante 1.3.0 removed it (proxyprotocol:
// msproxy_v2). The vendor never documented the protocol; the reference is section 2 of
// DANTE.md, itself read from Dante's lib/msproxy_clientprotocol.c and Wireshark's dissector.
//
// The package has three layers:
//
//   - A codec: the 38-byte Header, the command codes (Cmd...) and one type per message
//     layout (Hello, HelloAck, Resolve, ResolveAck, Connect also for LISTEN, ConnectAck also
//     for BINDINFO, Bind, BindAck, Bind2, BindInfoAck, Plain for header-only messages such as
//     USERINFO_ACK, CONNECTED, BIND2_ACK, SESSIONEND, keepalive answers and failures). Each
//     type has an Append method that pads to 172 bytes, and a Decode function that bounds
//     every offset by the datagram length (at most 1024 bytes); DecodeRequest and DecodeReply
//     dispatch on the command.
//   - Dialer, a client: one UDP control socket per proxied connection; HELLO twice, RESOLVE
//     for host names, CONNECT, the TCP data connection to the address in CONNECT_ACK, then
//     CONNECTED; or, for Listen, the BIND, BIND2, LISTEN, BINDINFO, BINDINFO_ACK sequence
//     after which the proxy connects to a local listening socket. Keepalive HELLOs run every
//     six minutes on established sessions and Close sends SESSIONEND.
//   - Server, which answers such clients per DANTE.md 2.5 and relays through any
//     proxy.ContextDialer, so a site can retire an MS Proxy box and keep its clients.
//
// # Sequence numbers
//
// A client numbers its packets 0 while the server's sequence (echoed as "server ack") is
// below 2, then previous+1, as Dante does; a server numbers its packets 0, 1, 2, ... and puts
// the sequence of the client packet it answers in "client ack". Retransmissions repeat a
// packet byte for byte.
//
// # Where this package differs from Dante's client
//
//   - It never ends the process: every unexpected answer is an error (a *net.OpError
//     wrapping ErrProtocol, ErrTimeout or a *CommandError).
//   - It resends a control datagram that got no answer (Retries times, RetryInterval
//     doubling), and it accepts only answers with a sequence number newer than the last one
//     received (serial arithmetic modulo 256), so duplicated answers are dropped. Dante also
//     accepts older sequence numbers.
//   - It does not insist that USERINFO_ACK has sequence exactly 1 (only that it is new), and
//     it ignores datagrams that do not decode rather than failing.
//   - It checks that the server id stays constant (ErrProtocol otherwise) and that BIND2_ACK
//     acknowledges the BIND2 (Dante requires client-ack 1, which is the BIND2's sequence).
//   - Accept of a BIND checks that the proxy's connection comes from the proxy's address and
//     the source port announced in BINDINFO, as Dante's accept does, and closes others.
//   - IPv4 only, as the protocol: IPv6 destinations fail with ErrUnsupported.
//
// # Server choices the recipe leaves open
//
// The Server dials the destination before answering CONNECT, so a failure is reported with
// CmdRefused (0x0401, any 0x04xx means "refused" to Dante) instead of a CONNECT_ACK to a
// dead end; a name that does not resolve gets RESOLVE_ACK 0.0.0.0; a failed BIND gets 0x0701
// (address in use) or 0x0804; keepalives and BINDINFO_ACK are answered with 0x0400. It
// accepts the client's data connection only from the client's IP, and connects back for a
// BIND from the source port it announced at BINDINFO offset 72. Forwarding and BIND
// listeners are opened on the server address the client's datagrams arrived at (the
// kernel's route to the client when the UDP socket is bound to a wildcard address); a BIND
// gets the requested port when it is not 0, and the requested IPv4 address is ignored.
package msproxy
