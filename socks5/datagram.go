package socks5

// Datagram is a UDP datagram of a SOCKS5 UDP association (RFC 1928 section
// 7): RSV[2]=0 FRAG[1] ATYP DST.ADDR DST.PORT DATA. Between a client and
// the relay, Addr is the destination (client to relay) or the source (relay
// to client) of the payload.
type Datagram struct {
	// Frag is the fragment number; 0 is a whole datagram. A relay that does
	// not reassemble drops datagrams with Frag != 0.
	Frag byte
	Addr Addr
	// Data is the payload. ParseDatagram makes it alias its input.
	Data []byte
}

// ParseDatagram parses a UDP datagram. Every error wraps ErrBadDatagram,
// and also ErrBadReserved (RSV not 0), io.ErrUnexpectedEOF (truncated),
// ErrAddressType (unknown ATYP) or ErrEmptyDomain. Data aliases b. It does
// not allocate, except the string of a domain name; errors do not allocate
// either, so a flood of garbage costs no garbage.
func ParseDatagram(b []byte) (Datagram, error) {
	if len(b) < 3 {
		return Datagram{}, errDatagramShort
	}
	if b[0] != 0 || b[1] != 0 {
		return Datagram{}, errDatagramRSV
	}
	addr, n, err := parseAddr(b[3:])
	if err != nil {
		return Datagram{}, err
	}
	return Datagram{Frag: b[2], Addr: addr, Data: b[3+n:]}, nil
}

// AppendDatagramHeader appends a UDP datagram header, RSV FRAG ATYP ADDR
// PORT, to b; the payload follows it. It fails with ErrBadAddress,
// returning b unchanged, when addr is not valid. The header is at most
// MaxDatagramHeaderLen bytes. It does not allocate when b has room.
func AppendDatagramHeader(b []byte, frag byte, addr Addr) ([]byte, error) {
	if !addr.IsValid() {
		_, err := addr.AppendBinary(nil)
		return b, err
	}
	b = append(b, 0, 0, frag)
	return addr.AppendBinary(b)
}

// AppendDatagram appends a whole datagram, header and d.Data, to b. It
// fails like AppendDatagramHeader.
func AppendDatagram(b []byte, d Datagram) ([]byte, error) {
	b, err := AppendDatagramHeader(b, d.Frag, d.Addr)
	if err != nil {
		return b, err
	}
	return append(b, d.Data...), nil
}
