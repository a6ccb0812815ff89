package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// errChecksum is wrapped when the bytes that arrived are not the bytes that
// were sent.
var errChecksum = errors.New("checksum mismatch")

// bench holds what every scenario needs.
type bench struct {
	dial    dialFunc
	target  string // the target's address
	timeout time.Duration
	pids    []int // proxy process roots; nil for none
	meter   *meter
}

// meter is what the progress reporter reads while a scenario runs.
type meter struct {
	mu    sync.Mutex
	label string
	start time.Time
	bytes atomic.Int64
	conns atomic.Int64
	errs  atomic.Int64
}

func (m *meter) reset(label string) {
	m.mu.Lock()
	m.label = label
	m.start = time.Now()
	m.mu.Unlock()
	m.bytes.Store(0)
	m.conns.Store(0)
	m.errs.Store(0)
}

func (m *meter) line() string {
	m.mu.Lock()
	label, start := m.label, m.start
	m.mu.Unlock()
	if label == "" {
		return ""
	}
	el := time.Since(start).Seconds()
	b, c, e := m.bytes.Load(), m.conns.Load(), m.errs.Load()
	switch {
	case b > 0:
		return fmt.Sprintf("%s: %.1fs %.0f MiB %.0f MiB/s", label, el, float64(b)/(1<<20), float64(b)/(1<<20)/el)
	default:
		return fmt.Sprintf("%s: %.1fs %d conns %.0f/s %d errors", label, el, c, float64(c)/el, e)
	}
}

// cpuSample reads the proxy tree's CPU time, if there is a proxy pid.
func (b *bench) cpuSample() (float64, bool) {
	if len(b.pids) == 0 {
		return 0, false
	}
	s, err := sampleTree(b.pids)
	if err != nil {
		return 0, false
	}
	return s.CPUSeconds(), true
}

// BulkResult is one bulk throughput run.
type BulkResult struct {
	Direction  string  `json:"direction"` // "up" (client to target) or "down"
	Streams    int     `json:"streams"`
	Bytes      int64   `json:"bytes"` // moved and verified, all streams together
	Seconds    float64 `json:"seconds"`
	MiBPerSec  float64 `json:"mib_per_s"`
	ChecksumOK bool    `json:"checksum_ok"`
	Error      string  `json:"error,omitempty"`
	// ProxyCPUSeconds is the CPU time the proxy's process tree used during
	// the run; ProxyCPUPerGiB divides it by the GiB relayed.
	ProxyCPUSeconds *float64 `json:"proxy_cpu_s,omitempty"`
	ProxyCPUPerGiB  *float64 `json:"proxy_cpu_s_per_gib,omitempty"`
}

// runBulk moves total bytes in the given direction over streams connections
// at once, each carrying total/streams (the first one the remainder too), and
// verifies every stream's CRC-32C.
func (b *bench) runBulk(ctx context.Context, dir string, streams int, total int64) BulkResult {
	res := BulkResult{Direction: dir, Streams: streams}
	b.meter.reset(fmt.Sprintf("bulk %s x%d", dir, streams))
	cpu0, haveCPU := b.cpuSample()
	per := total / int64(streams)
	errs := make([]error, streams)
	var moved atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for i := range streams {
		n := per
		if i == 0 {
			n += total - per*int64(streams)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if dir == "up" {
				err = b.upload(ctx, n)
			} else {
				err = b.download(ctx, n)
			}
			if err == nil {
				moved.Add(n)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	res.Seconds = el
	res.Bytes = moved.Load()
	res.MiBPerSec = float64(res.Bytes) / (1 << 20) / el
	res.ChecksumOK = true
	if err := errors.Join(errs...); err != nil {
		res.ChecksumOK = false
		res.Error = firstLine(err)
	}
	if cpu1, ok := b.cpuSample(); ok && haveCPU {
		cpu := cpu1 - cpu0
		res.ProxyCPUSeconds = &cpu
		if res.Bytes > 0 {
			per := cpu / (float64(res.Bytes) / (1 << 30))
			res.ProxyCPUPerGiB = &per
		}
	}
	return res
}

// dialTarget dials the target, closes the connection when ctx ends, and
// wraps it with an inactivity deadline.
func (b *bench) dialTarget(ctx context.Context) (*deadlineConn, func(), error) {
	c, err := b.dial(ctx, b.target)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	return &deadlineConn{Conn: c, timeout: b.timeout}, func() { stop(); c.Close() }, nil
}

func (b *bench) upload(ctx context.Context, n int64) error {
	c, done, err := b.dialTarget(ctx)
	if err != nil {
		return err
	}
	defer done()
	var hdr [9]byte
	hdr[0] = opUpload
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	if _, err := c.Write(hdr[:]); err != nil {
		return err
	}
	sum, err := sendPatternProgress(c, n, func(k int) { b.meter.bytes.Add(int64(k)) })
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	var trailer [12]byte
	if _, err := io.ReadFull(c, trailer[:]); err != nil {
		return fmt.Errorf("upload: reading the sink's count and checksum: %w", err)
	}
	gotN, gotSum := binary.BigEndian.Uint64(trailer[:8]), binary.BigEndian.Uint32(trailer[8:])
	if gotN != uint64(n) || gotSum != sum {
		return fmt.Errorf("%w: upload sent %d bytes crc32c %08x, the sink got %d bytes crc32c %08x", errChecksum, n, sum, gotN, gotSum)
	}
	return nil
}

func (b *bench) download(ctx context.Context, n int64) error {
	c, done, err := b.dialTarget(ctx)
	if err != nil {
		return err
	}
	defer done()
	var hdr [9]byte
	hdr[0] = opDownload
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	if _, err := c.Write(hdr[:]); err != nil {
		return err
	}
	buf := make([]byte, ioChunk)
	var got int64
	var sum uint32
	for got < n {
		k, err := c.Read(buf[:min(int64(len(buf)), n-got)])
		if k > 0 {
			sum = crc32.Update(sum, castagnoli, buf[:k])
			got += int64(k)
			b.meter.bytes.Add(int64(k))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("download: the stream ended after %d of %d bytes", got, n)
			}
			return fmt.Errorf("download: %w", err)
		}
	}
	var trailer [4]byte
	if _, err := io.ReadFull(c, trailer[:]); err != nil {
		return fmt.Errorf("download: reading the source's checksum: %w", err)
	}
	if want := binary.BigEndian.Uint32(trailer[:]); want != sum {
		return fmt.Errorf("%w: download received crc32c %08x, the source sent %08x", errChecksum, sum, want)
	}
	return nil
}

// RateResult is one connection-rate run.
type RateResult struct {
	Workers     int     `json:"workers"`
	Conns       int64   `json:"conns"` // completed: connect, 64-byte request, 64-byte echo, close
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Seconds     float64 `json:"seconds"`
	ConnsPerSec float64 `json:"conns_per_s"`
	// Latencies of completed connections, dial to close, in microseconds.
	MeanMicros float64 `json:"mean_us"`
	P50Micros  float64 `json:"p50_us"`
	P99Micros  float64 `json:"p99_us"`
	P999Micros float64 `json:"p99_9_us"`
	MaxMicros  float64 `json:"max_us"`
	// ProxyCPUMicrosPerConn is the proxy tree's CPU time per completed connection.
	ProxyCPUMicrosPerConn *float64 `json:"proxy_cpu_us_per_conn,omitempty"`
}

// rateRequestSize is the size of the request and of its echo.
const rateRequestSize = 64

// runRate runs workers loops of connect, 64-byte request, 64-byte echo,
// close, for dur or until maxConns connections were started, whichever
// comes first.
func (b *bench) runRate(ctx context.Context, workers int, dur time.Duration, maxConns int64) RateResult {
	res := RateResult{Workers: workers}
	b.meter.reset(fmt.Sprintf("rate x%d", workers))
	cpu0, haveCPU := b.cpuSample()
	end := time.Now().Add(dur)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	var started atomic.Int64
	var firstErr atomic.Value
	hists := make([]histogram, workers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &hists[w]
			var req, resp [rateRequestSize]byte
			req[0] = opEcho
			for i := 1; i < len(req); i++ {
				req[i] = byte(w + i)
			}
			for ctx.Err() == nil && started.Add(1) <= maxConns {
				t0 := time.Now()
				err := b.oneEcho(ctx, req[:], resp[:])
				if err != nil {
					if ctx.Err() != nil || !time.Now().Before(end) {
						return // the run ended mid-connection: not an error
					}
					b.meter.errs.Add(1)
					firstErr.CompareAndSwap(nil, firstLine(err))
					// Do not spin on a refusing proxy.
					select {
					case <-ctx.Done():
					case <-time.After(time.Millisecond):
					}
					continue
				}
				h.record(time.Since(t0))
				b.meter.conns.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	var h histogram
	for i := range hists {
		h.merge(&hists[i])
	}
	res.Conns = int64(h.n)
	res.Errors = b.meter.errs.Load()
	if e, ok := firstErr.Load().(string); ok {
		res.FirstError = e
	}
	res.ConnsPerSec = float64(res.Conns) / res.Seconds
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	res.MeanMicros = us(h.mean())
	res.P50Micros = us(h.quantile(0.50))
	res.P99Micros = us(h.quantile(0.99))
	res.P999Micros = us(h.quantile(0.999))
	res.MaxMicros = us(time.Duration(h.max))
	if cpu1, ok := b.cpuSample(); ok && haveCPU && res.Conns > 0 {
		per := (cpu1 - cpu0) * 1e6 / float64(res.Conns)
		res.ProxyCPUMicrosPerConn = &per
	}
	return res
}

// oneEcho is one connection of the rate scenario.
func (b *bench) oneEcho(ctx context.Context, req, resp []byte) error {
	c, err := b.dial(ctx, b.target)
	if err != nil {
		return err
	}
	defer c.Close()
	if b.timeout > 0 {
		c.SetDeadline(time.Now().Add(b.timeout))
	}
	if _, err := c.Write(req); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, resp); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if !bytes.Equal(req, resp) {
		return fmt.Errorf("%w: the echo differs from the request", errChecksum)
	}
	return nil
}

// IdleResult is one idle-sessions run.
type IdleResult struct {
	Requested  int     `json:"requested"`
	Opened     int     `json:"opened"`   // sessions established (handshake and a 1-byte echo)
	Verified   int     `json:"verified"` // of those, sessions that still echoed after the hold
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	HoldSecs   float64 `json:"hold_s"`
	OpenSecs   float64 `json:"open_s"`
	// The proxy's process tree before opening and while holding the
	// sessions; absent without -proxy-pid.
	Before *treeSample `json:"before,omitempty"`
	During *treeSample `json:"during,omitempty"`
	// Per-session deltas (During-Before)/Opened.
	RSSKiBPerSession *float64 `json:"rss_kib_per_session,omitempty"`
	PSSKiBPerSession *float64 `json:"pss_kib_per_session,omitempty"`
	FDsPerSession    *float64 `json:"fds_per_session,omitempty"`
}

// idleParallel is how many sessions are being opened at once.
const idleParallel = 16

// runIdle opens n sessions, each with a handshake and a 1-byte echo so that
// the relay is established, holds them for hold, samples the proxy, checks
// that each still echoes, and closes them all.
func (b *bench) runIdle(ctx context.Context, n int, hold time.Duration) IdleResult {
	res := IdleResult{Requested: n}
	b.meter.reset(fmt.Sprintf("idle %d", n))
	var err error
	if len(b.pids) > 0 {
		s, e := sampleTree(b.pids)
		if e == nil {
			res.Before = &s
		}
		err = e
	}
	if err != nil {
		res.FirstError = firstLine(err)
		return res
	}
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	// Open, idleParallel at a time; stop early after many failures.
	maxErrs := int64(10 + n/100)
	var next, errs atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range idleParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && errs.Load() < maxErrs {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := b.openIdle(ctx)
				if err != nil {
					errs.Add(1)
					b.meter.errs.Add(1)
					firstErr.CompareAndSwap(nil, firstLine(err))
					continue
				}
				conns[i] = c
				b.meter.conns.Add(1)
			}
		}()
	}
	wg.Wait()
	res.OpenSecs = time.Since(start).Seconds()
	res.Errors = int(errs.Load())
	if e, ok := firstErr.Load().(string); ok {
		res.FirstError = e
	}
	for _, c := range conns {
		if c != nil {
			res.Opened++
		}
	}
	// Hold.
	select {
	case <-ctx.Done():
	case <-time.After(hold):
	}
	res.HoldSecs = hold.Seconds()
	if len(b.pids) > 0 {
		if s, err := sampleTree(b.pids); err == nil {
			res.During = &s
			if res.Opened > 0 && res.Before != nil {
				o := float64(res.Opened)
				rss := float64(s.RSSKiB-res.Before.RSSKiB) / o
				fds := float64(s.FDs-res.Before.FDs) / o
				res.RSSKiBPerSession, res.FDsPerSession = &rss, &fds
				if s.PSSKiB >= 0 && res.Before.PSSKiB >= 0 {
					pss := float64(s.PSSKiB-res.Before.PSSKiB) / o
					res.PSSKiBPerSession = &pss
				}
			}
		}
	}
	// Verify that the sessions survived the hold: one more byte each.
	var verified atomic.Int64
	next.Store(0)
	for range idleParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var bb [1]byte
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c := conns[i]
				if c == nil {
					continue
				}
				if b.timeout > 0 {
					c.SetDeadline(time.Now().Add(b.timeout))
				}
				bb[0] = byte(i)
				if _, err := c.Write(bb[:]); err != nil {
					continue
				}
				if _, err := io.ReadFull(c, bb[:]); err == nil && bb[0] == byte(i) {
					verified.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res.Verified = int(verified.Load())
	return res
}

// openIdle opens one session and does a 1-byte echo through it.
func (b *bench) openIdle(ctx context.Context) (net.Conn, error) {
	c, err := b.dial(ctx, b.target)
	if err != nil {
		return nil, err
	}
	if b.timeout > 0 {
		c.SetDeadline(time.Now().Add(b.timeout))
	}
	var bb [1]byte
	if _, err := c.Write([]byte{opHold}); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := io.ReadFull(c, bb[:]); err != nil || bb[0] != opHold {
		c.Close()
		if err == nil {
			err = fmt.Errorf("%w: the echo differs", errChecksum)
		}
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// firstLine returns err's message up to its first newline, shortened.
func firstLine(err error) string {
	s := err.Error()
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
