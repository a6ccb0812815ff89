package socks5

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
)

// midMessage turns io.EOF into io.ErrUnexpectedEOF: it is for reads after
// the first byte of a message.
func midMessage(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readFull fills dst from br. It uses only Peek and Discard, never an
// io.Reader call, so dst does not escape and callers can pass arrays on
// their stack. It copies in chunks of at most br.Size() bytes, so any
// buffer size works. It is only called after the first byte of a message,
// so end of input is io.ErrUnexpectedEOF.
func readFull(br *bufio.Reader, dst []byte) error {
	size := max(br.Size(), 1)
	for len(dst) > 0 {
		n := min(len(dst), size)
		p, err := br.Peek(n)
		if len(p) < n {
			if err == nil { // Peek explains every short result; be safe anyway
				err = io.ErrUnexpectedEOF
			}
			return midMessage(err)
		}
		copy(dst, p)
		_, _ = br.Discard(n) // cannot fail: the n bytes are buffered
		dst = dst[n:]
	}
	return nil
}

// readByte reads one byte after the first byte of a message.
func readByte(br *bufio.Reader) (byte, error) {
	b, err := br.ReadByte()
	return b, midMessage(err)
}

// readAddr reads DST.ADDR and DST.PORT (or BND.*) of the given address type.
func readAddr(br *bufio.Reader, atyp byte) (Addr, error) {
	switch atyp {
	case AddrTypeIPv4:
		var buf [4 + 2]byte
		if err := readFull(br, buf[:]); err != nil {
			return Addr{}, err
		}
		return Addr{IP: netip.AddrFrom4([4]byte(buf[:4])), Port: binary.BigEndian.Uint16(buf[4:])}, nil
	case AddrTypeIPv6:
		var buf [16 + 2]byte
		if err := readFull(br, buf[:]); err != nil {
			return Addr{}, err
		}
		return Addr{IP: netip.AddrFrom16([16]byte(buf[:16])), Port: binary.BigEndian.Uint16(buf[16:])}, nil
	case AddrTypeDomain:
		n, err := readByte(br)
		if err != nil {
			return Addr{}, err
		}
		if n == 0 {
			return Addr{}, ErrEmptyDomain
		}
		var buf [MaxDomainLen + 2]byte
		if err := readFull(br, buf[:int(n)+2]); err != nil {
			return Addr{}, err
		}
		return Addr{Name: string(buf[:n]), Port: binary.BigEndian.Uint16(buf[n:])}, nil
	}
	return Addr{}, fmt.Errorf("%w: 0x%02x", ErrAddressType, atyp)
}

// Errors of parseAddr: static, so that parsing datagrams never allocates.
var (
	errDatagramShort = &wireError{"socks5: malformed UDP datagram: truncated", []error{ErrBadDatagram, io.ErrUnexpectedEOF}}
	errDatagramRSV   = &wireError{"socks5: malformed UDP datagram: reserved field not zero", []error{ErrBadDatagram, ErrBadReserved}}
	errDatagramAtyp  = &wireError{"socks5: malformed UDP datagram: address type not supported", []error{ErrBadDatagram, ErrAddressType}}
	errDatagramEmpty = &wireError{"socks5: malformed UDP datagram: empty domain name", []error{ErrBadDatagram, ErrEmptyDomain}}
)

// parseAddr parses ATYP, ADDR and PORT at the start of b and returns the
// address and the number of bytes it took.
func parseAddr(b []byte) (Addr, int, error) {
	if len(b) < 1 {
		return Addr{}, 0, errDatagramShort
	}
	switch b[0] {
	case AddrTypeIPv4:
		const n = 1 + 4 + 2
		if len(b) < n {
			return Addr{}, 0, errDatagramShort
		}
		return Addr{IP: netip.AddrFrom4([4]byte(b[1:5])), Port: binary.BigEndian.Uint16(b[5:])}, n, nil
	case AddrTypeIPv6:
		const n = 1 + 16 + 2
		if len(b) < n {
			return Addr{}, 0, errDatagramShort
		}
		return Addr{IP: netip.AddrFrom16([16]byte(b[1:17])), Port: binary.BigEndian.Uint16(b[17:])}, n, nil
	case AddrTypeDomain:
		if len(b) < 2 {
			return Addr{}, 0, errDatagramShort
		}
		l := int(b[1])
		if l == 0 {
			return Addr{}, 0, errDatagramEmpty
		}
		n := 2 + l + 2
		if len(b) < n {
			return Addr{}, 0, errDatagramShort
		}
		return Addr{Name: string(b[2 : 2+l]), Port: binary.BigEndian.Uint16(b[2+l:])}, n, nil
	}
	return Addr{}, 0, errDatagramAtyp
}
