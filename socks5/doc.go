// Package socks5 is a wire codec for SOCKS version 5 (RFC 1928) and its
// username/password sub-negotiation (RFC 1929).
//
// The package only turns bytes into plain values and plain values into
// bytes. It never dials, resolves names, verifies passwords or decides
// policy: those belong to the callers (the root package's server pipeline
// and Dialer). Every message of the protocol has a pair of functions:
//
//	message                 server side                     client side
//	greeting                ReadGreeting                    AppendGreeting
//	method selection        AppendMethodSelection           ReadMethodSelection
//	RFC 1929 request        ReadUsernamePasswordRequest     AppendUsernamePasswordRequest
//	RFC 1929 reply          AppendUsernamePasswordReply     ReadUsernamePasswordReply
//	request                 ReadRequest                     AppendRequest
//	reply                   AppendReply                     ReadReply
//	UDP datagram header     ParseDatagram, AppendDatagramHeader, AppendDatagram (both ways)
//
// # Reading
//
// Read functions take a *bufio.Reader, the one small buffer a connection
// keeps for its handshake. They consume exactly the bytes of one message, so
// the next message (or the first bytes of a relayed stream) stays in the
// buffer for the next call. They work with any buffer size that bufio allows
// (16 bytes and up) and with input that arrives one byte at a time: when a
// field is longer than the reader's buffer it is copied out in chunks.
//
// Reading a greeting, an IP request or reply, and parsing a datagram do not
// allocate; a domain name allocates only its string. Fields are copied into
// arrays on the stack through Peek and Discard, never handed to an io.Reader
// (which would make them escape to the heap).
//
// # Errors
//
// Malformed input gives an error wrapping one of the exported sentinel
// errors (ErrVersion, ErrCommandNotSupported, ErrAddressType, ...), so
// callers use errors.Is. I/O errors are returned as they come from the
// reader, with one rule for end of input: io.EOF when the input ended before
// the first byte of a message (the peer went away between messages), and
// io.ErrUnexpectedEOF when it ended inside one. Client-side reads (of what a
// server sent) also wrap ErrShortReply in both cases. After any error the
// stream is out of step and the connection should be closed, once the reply
// that ReplyFor names, if any, has been sent.
//
// Errors never contain a password.
//
// # Leniency
//
// The codec accepts what real peers send where the RFC leaves room, and is
// strict where a length or a type would otherwise be guessed:
//
//   - The RSV byte of a request and of a reply is ignored (RFC 1928 says it
//     is 0; nothing depends on it). The two RSV bytes of a UDP datagram must
//     be 0, because a relay has no other check that a datagram is SOCKS at
//     all: ParseDatagram rejects anything else with ErrBadDatagram and
//     ErrBadReserved.
//   - Domain names are opaque bytes of length 1 to 255. The codec does not
//     check their characters, nor turn a name that spells an IP address into
//     an IP: that is for policy and the resolver.
//   - An IPv6 address is kept as sent, including IPv4-mapped addresses
//     (::ffff:a.b.c.d), so that decoding and encoding are exact inverses.
//     AddrFromAddrPort unmaps, for addresses that come from the local
//     network stack.
//   - Request commands other than CONNECT, BIND and UDP ASSOCIATE are
//     reported with ErrCommandNotSupported and the command value; reply codes
//     and methods are passed through whatever their value.
package socks5
