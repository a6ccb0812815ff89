package socks

import (
	"sync"
	"time"
)

// deepPool runs a server's deep calls, the outbound dial and the connect
// log line, on goroutines kept for the purpose.
//
// A goroutine keeps a grown stack for as long as it blocks, and an idle
// session's goroutine blocks for the whole relay. net.Dialer and a
// log/slog handler each grow a goroutine's stack to 8 KiB; run on the
// session's goroutine they would leave every idle session holding 8 KiB of
// stack where 4 do. Run on a fresh goroutine each time, they would pay for
// a goroutine start and two stack copies per session. The pool's
// goroutines grew their stacks once and keep them, so a call costs a
// hand-over on a channel.
//
// The pool never queues: when no goroutine is idle a new one starts, so a
// slow dial never delays another. Goroutines that would be idle beyond
// deepPoolMaxIdle exit, and so do those idle for longer than idleTime (10
// seconds by default); close ends them all. The zero value is ready to
// use.
type deepPool struct {
	mu       sync.Mutex
	idle     []*deepWorker // the most recently used last
	closed   bool
	sweeping bool
	stop     chan struct{} // closed by close to end the sweeper

	idleTime time.Duration // 0: defaultDeepIdleTime; set before first use
}

const (
	deepPoolMaxIdle     = 1024
	defaultDeepIdleTime = 10 * time.Second
)

// deepWorker is one goroutine of a deepPool.
type deepWorker struct {
	jobs     chan *deepJob // buffered: handing a job over never blocks
	lastUsed time.Time
}

type deepJob struct {
	fn   func()
	done sync.WaitGroup // one allocation per job: no separate channel
}

// do runs fn on a pool goroutine and returns when fn has returned.
func (p *deepPool) do(fn func()) {
	job := &deepJob{fn: fn}
	job.done.Add(1)
	p.mu.Lock()
	var w *deepWorker
	if n := len(p.idle); n > 0 {
		w = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	if w != nil {
		w.jobs <- job
	} else {
		w = &deepWorker{jobs: make(chan *deepJob, 1)}
		w.jobs <- job
		go w.loop(p)
	}
	job.done.Wait()
}

func (w *deepWorker) loop(p *deepPool) {
	for job := range w.jobs {
		job.fn()
		// Back in the idle list before the caller wakes, so that a caller's
		// next call (a session dials, then logs) finds this goroutine
		// instead of starting another. A job handed over before done is
		// signalled waits in the channel's buffer.
		idle := p.putIdle(w)
		job.done.Done()
		if !idle {
			return
		}
	}
}

// putIdle makes w available again; false means w must exit.
func (p *deepPool) putIdle(w *deepWorker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= deepPoolMaxIdle {
		return false
	}
	w.lastUsed = time.Now()
	p.idle = append(p.idle, w)
	if !p.sweeping {
		p.sweeping = true
		p.stop = make(chan struct{})
		if p.idleTime <= 0 {
			p.idleTime = defaultDeepIdleTime
		}
		go p.sweep(p.stop, p.idleTime)
	}
	return true
}

// sweep ends workers idle for longer than idleTime. It runs while any
// worker is idle.
func (p *deepPool) sweep(stop chan struct{}, idleTime time.Duration) {
	t := time.NewTimer(idleTime)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		cutoff := time.Now().Add(-idleTime)
		n := 0
		for n < len(p.idle) && p.idle[n].lastUsed.Before(cutoff) {
			close(p.idle[n].jobs)
			n++
		}
		kept := copy(p.idle, p.idle[n:])
		clear(p.idle[kept:])
		p.idle = p.idle[:kept]
		if kept == 0 {
			p.sweeping = false
			p.mu.Unlock()
			return
		}
		next := time.Until(p.idle[0].lastUsed.Add(idleTime))
		p.mu.Unlock()
		t.Reset(max(next, time.Millisecond))
	}
}

// close ends every idle worker and makes busy ones exit when their job is
// done. Later calls of do still work, each on a goroutine that then exits.
func (p *deepPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.idle {
		close(w.jobs)
	}
	p.idle = nil
	if p.sweeping {
		close(p.stop)
		p.sweeping = false
	}
}
