package relay

import (
	"time"

	"github.com/virgilproxy/socks/socks5"
)

// udpReasm is an association's one RFC 1928 reassembly queue. Its buffer
// is allocated at the first fragment and reused; it never exceeds
// maxReasm bytes.
type udpReasm struct {
	buf      []byte
	n        int         // payload bytes queued
	active   bool        // a sequence is in progress
	highest  byte        // highest fragment position queued
	count    int64       // fragments queued
	addr     socks5.Addr // destination of the first fragment
	deadline time.Time   // reassembly timer; zero when not active
}

// fragment handles a client datagram with FRAG != 0.
func (a *udpAssoc) fragment(d socks5.Datagram, r *UDPResult) {
	q := &a.q
	pos := int(d.Frag & 0x7f)
	last := d.Frag&0x80 != 0
	if q.active && !time.Now().Before(q.deadline) {
		a.discard(r) // the timer expired while we were busy
	}
	if pos == 0 || pos > a.maxFrags {
		// 0x80 (a "last" flag on no position), or beyond the limit.
		a.discard(r)
		r.DroppedFragment++
		return
	}
	if q.active && pos != int(q.highest)+1 {
		// A repeat or a step back (RFC 1928: reinitialize the queue), or a
		// gap, which can never be filled.
		a.discard(r)
	}
	if !q.active {
		if pos != 1 {
			r.DroppedFragment++
			return
		}
		if q.buf == nil {
			q.buf = make([]byte, a.maxReasm)
		}
		q.active = true
		q.n = 0
		q.count = 0
		q.addr = d.Addr
		q.deadline = time.Now().Add(a.reasmTimeout)
	}
	if len(d.Data) > len(q.buf)-q.n {
		a.discard(r)
		r.DroppedFragment++
		return
	}
	q.n += copy(q.buf[q.n:], d.Data)
	q.highest = byte(pos)
	q.count++
	if !last {
		return
	}
	r.FragmentsJoined += q.count
	r.Reassembled++
	addr, data := q.addr, q.buf[:q.n]
	a.reset()
	a.forward(addr, data, r)
}

// discard abandons the pending sequence, if any, counting its fragments.
func (a *udpAssoc) discard(r *UDPResult) {
	if a.q.active {
		r.DroppedFragment += a.q.count
		a.reset()
	}
}

// expire discards the pending sequence if its timer has expired.
func (a *udpAssoc) expire(r *UDPResult) {
	if a.q.active && !time.Now().Before(a.q.deadline) {
		a.discard(r)
	}
}

func (a *udpAssoc) reset() {
	q := &a.q
	q.active = false
	q.n = 0
	q.count = 0
	q.highest = 0
	q.addr = socks5.Addr{}
	q.deadline = time.Time{}
}
