package msproxy

import (
	"errors"
	"fmt"
	"net"
)

// Sentinel errors. Client errors are *net.OpError values whose Err wraps one of these (or a
// *CommandError that matches them with errors.Is), so callers use errors.Is and errors.As.
var (
	// ErrShortPacket: a packet shorter than the header or than 172 bytes.
	ErrShortPacket = errors.New("msproxy: packet too short")
	// ErrMalformed: a packet whose fields do not fit the layout (strings, lengths, signature).
	ErrMalformed = errors.New("msproxy: malformed packet")
	// ErrProtocol: a well-formed packet the protocol does not allow here (a changed server
	// id, a BIND2_ACK that acknowledges another packet, a BINDINFO for another bind id).
	ErrProtocol = errors.New("msproxy: protocol violation")
	// ErrTimeout: no valid answer after all retransmissions. It reports Timeout() == true.
	ErrTimeout error = timeoutError{}
	// ErrUnsupported: something MS Proxy v2 cannot express (IPv6, UDP, a name over 254 bytes).
	ErrUnsupported = errors.New("msproxy: not supported by the protocol")
	// ErrAuthFailed matches both "auth failed" commands, 0x081E and 0x0804.
	ErrAuthFailed = errors.New("msproxy: proxy denied the request")
	// ErrConnectAuthFailed matches command 0x081E (CONNECT_AUTHFAILED in Dante's constants).
	ErrConnectAuthFailed = fmt.Errorf("%w (0x081E, connect)", ErrAuthFailed)
	// ErrBindAuthFailed matches command 0x0804 (BIND_AUTHFAILED in Dante's constants).
	ErrBindAuthFailed = fmt.Errorf("%w (0x0804, bind)", ErrAuthFailed)
	// ErrRefused matches every command with high byte 0x04 or top nibble 0x4 received where
	// another answer was expected: Dante's client maps them to ECONNREFUSED.
	ErrRefused = errors.New("msproxy: connection refused by proxy")
	// ErrAddrInUse matches command 0x0701 (ADDRINUSE).
	ErrAddrInUse = errors.New("msproxy: address in use at proxy")
	// ErrServerClosed is returned by Server.Serve and ListenAndServe after Close. It wraps
	// net.ErrClosed.
	ErrServerClosed = fmt.Errorf("msproxy: server closed: %w", net.ErrClosed)
)

type timeoutError struct{}

func (timeoutError) Error() string {
	return "msproxy: no answer from proxy (retransmissions exhausted)"
}
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// CommandError is the answer the proxy sent instead of the one the client expected.
// errors.Is matches it against ErrConnectAuthFailed (0x081E), ErrBindAuthFailed (0x0804),
// both against ErrAuthFailed, ErrAddrInUse (0x0701), ErrRefused (0x04xx, 0x4xxx) and
// ErrProtocol (any other command).
type CommandError struct {
	Command uint16 // the command received
	Request uint16 // the command it answered
}

func (e *CommandError) Error() string {
	what := "unexpected answer"
	switch {
	case e.Command == CmdConnectAuthFailed:
		what = "connect denied (CONNECT_AUTHFAILED)"
	case e.Command == CmdBindAuthFailed:
		what = "bind denied (BIND_AUTHFAILED)"
	case e.Command == CmdAddrInUse:
		what = "address in use (ADDRINUSE)"
	case IsRefusal(e.Command):
		what = "connection refused"
	}
	return fmt.Sprintf("msproxy: %s: command %#04x in answer to %#04x", what, e.Command, e.Request)
}

// Is reports whether target is the sentinel matching e.Command.
func (e *CommandError) Is(target error) bool {
	switch target {
	case ErrConnectAuthFailed:
		return e.Command == CmdConnectAuthFailed
	case ErrBindAuthFailed:
		return e.Command == CmdBindAuthFailed
	case ErrAuthFailed:
		return e.Command == CmdConnectAuthFailed || e.Command == CmdBindAuthFailed
	case ErrAddrInUse:
		return e.Command == CmdAddrInUse
	case ErrRefused:
		return IsRefusal(e.Command)
	case ErrProtocol:
		return e.Command != CmdConnectAuthFailed && e.Command != CmdBindAuthFailed &&
			e.Command != CmdAddrInUse && !IsRefusal(e.Command)
	}
	return false
}
