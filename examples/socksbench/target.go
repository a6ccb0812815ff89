package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// The target protocol. The first byte a client sends picks the mode:
//
//	'U' + N (8 BE) sink: the target reads N bytes (or up to EOF), then
//	               answers with the count (8 bytes, big endian) and CRC-32C
//	               (4 bytes) of what it read, and closes.
//	'D' + N (8 BE) source: the target sends N bytes of the pattern stream,
//	               then the CRC-32C (4 bytes) of what it sent, and closes.
//	'E'            echo: the target writes back every byte it reads, the 'E'
//	               included, until EOF, each read in one write.
//
// The sink learns the length up front rather than from the client's
// half-close, because some proxies (microsocks) do not relay a half-close:
// they close both sides when one side ends.
//
// Checksums are CRC-32C (Castagnoli), which hash/crc32 computes with the
// CPU's CRC32 instruction on amd64 and arm64 (tens of GB/s), so hashing costs
// the load core little next to the copy itself.
const (
	opUpload   = 'U'
	opDownload = 'D'
	opEcho     = 'E'
	opHold     = 'H' // echo with no inactivity timeout: idle sessions are held as long as the client wants

	maxTransfer = 1 << 40 // bound on N
	ioChunk     = 128 << 10
	// patternPeriod is prime, so the stream never lines up with buffer
	// sizes, and a dropped, repeated or reordered chunk changes the checksum.
	patternPeriod = 65521
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// pattern holds the period-patternPeriod pseudo-random stream and one
	// more chunk, so that pattern[o:o+ioChunk] for any o < patternPeriod is
	// the stream from offset o.
	pattern = makePattern()
)

func makePattern() []byte {
	r := rand.New(rand.NewPCG(0x76697267696c, 0x736f636b73)) // fixed seed: "virgil", "socks"
	b := make([]byte, patternPeriod+ioChunk)
	for i := range patternPeriod {
		b[i] = byte(r.Uint32())
	}
	for i := patternPeriod; i < len(b); i++ {
		b[i] = b[i-patternPeriod]
	}
	return b
}

// patternAt returns up to n bytes of the pattern stream from offset off.
func patternAt(off int64, n int) []byte {
	n = min(n, ioChunk)
	o := int(off % patternPeriod)
	return pattern[o : o+n]
}

// errProtocol is wrapped by target protocol errors.
var errProtocol = errors.New("target protocol error")

// target is socksbench's own server: sink, source and echo on one loopback
// listener.
type target struct {
	l       net.Listener
	timeout time.Duration
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
}

// startTarget listens on 127.0.0.1 on a free port and serves until close.
// Every read and write waits at most timeout.
func startTarget(timeout time.Duration) (*target, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &target{l: l, timeout: timeout, conns: map[net.Conn]struct{}{}}
	t.wg.Add(1)
	go t.serve()
	return t, nil
}

// Addr is the target's address.
func (t *target) Addr() string { return t.l.Addr().String() }

// close stops the listener, ends every connection and waits for the
// goroutines.
func (t *target) close() {
	t.l.Close()
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func (t *target) serve() {
	defer t.wg.Done()
	for {
		c, err := t.l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off briefly rather than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.wg.Done()
			t.handle(c)
			c.Close()
			t.mu.Lock()
			delete(t.conns, c)
			t.mu.Unlock()
		}()
	}
}

// deadlineConn refreshes a connection's deadline at most about once per
// second of activity, so long transfers are bounded by inactivity rather than
// total time, without resetting a timer on every chunk.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
	next    time.Time
}

func (d *deadlineConn) touch() {
	if d.timeout <= 0 {
		return
	}
	now := time.Now()
	if now.After(d.next) {
		d.Conn.SetDeadline(now.Add(d.timeout))
		d.next = now.Add(time.Second)
	}
}

func (d *deadlineConn) Read(p []byte) (int, error)  { d.touch(); return d.Conn.Read(p) }
func (d *deadlineConn) Write(p []byte) (int, error) { d.touch(); return d.Conn.Write(p) }

func (t *target) handle(nc net.Conn) error {
	c := &deadlineConn{Conn: nc, timeout: t.timeout}
	// The first read takes the mode byte and whatever came with it, so that
	// an echo goes back in one write, as it arrived: a proxy that does not
	// set TCP_NODELAY must not meet a 1-byte segment followed by the rest
	// (Nagle's algorithm would hold the rest for the peer's delayed ACK).
	var first [512]byte
	n, err := c.Read(first[:])
	if n == 0 {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	rest := io.MultiReader(bytes.NewReader(first[1:n]), c)
	switch first[0] {
	case opUpload, opDownload:
		var hdr [8]byte
		if _, err := io.ReadFull(rest, hdr[:]); err != nil {
			return err
		}
		size := binary.BigEndian.Uint64(hdr[:])
		if size > maxTransfer {
			return fmt.Errorf("%w: transfer of %d bytes, more than %d", errProtocol, size, uint64(maxTransfer))
		}
		if first[0] == opUpload {
			got, sum, err := sink(rest, int64(size))
			if err != nil {
				return err
			}
			var trailer [12]byte
			binary.BigEndian.PutUint64(trailer[:8], uint64(got))
			binary.BigEndian.PutUint32(trailer[8:], sum)
			_, err = c.Write(trailer[:])
			return err
		}
		sum, err := sendPattern(c, int64(size))
		if err != nil {
			return err
		}
		var trailer [4]byte
		binary.BigEndian.PutUint32(trailer[:], sum)
		_, err = c.Write(trailer[:])
		return err
	case opEcho, opHold:
		if first[0] == opHold {
			c.timeout = 0
			nc.SetDeadline(time.Time{})
		}
		buf := first[:]
		for {
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			n, err = c.Read(buf)
		}
	default:
		return fmt.Errorf("%w: unknown mode %q", errProtocol, first[0])
	}
}

// sink reads n bytes from r, or up to EOF if that comes first, and returns
// the count and CRC-32C of what it read.
func sink(r io.Reader, n int64) (int64, uint32, error) {
	buf := make([]byte, ioChunk)
	var got int64
	var sum uint32
	for got < n {
		k, err := r.Read(buf[:min(int64(len(buf)), n-got)])
		if k > 0 {
			got += int64(k)
			sum = crc32.Update(sum, castagnoli, buf[:k])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return got, sum, nil
			}
			return got, sum, err
		}
	}
	return got, sum, nil
}

// sendPattern writes n bytes of the pattern stream to w, calling progress
// (if not nil) with each chunk's size, and returns their CRC-32C.
func sendPattern(w io.Writer, n int64) (uint32, error) {
	return sendPatternProgress(w, n, nil)
}

func sendPatternProgress(w io.Writer, n int64, progress func(int)) (uint32, error) {
	var off int64
	var sum uint32
	for off < n {
		p := patternAt(off, int(min(n-off, ioChunk)))
		k, err := w.Write(p)
		sum = crc32.Update(sum, castagnoli, p[:k])
		off += int64(k)
		if progress != nil {
			progress(k)
		}
		if err != nil {
			return sum, err
		}
	}
	return sum, nil
}
