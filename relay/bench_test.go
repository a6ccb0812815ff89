package relay

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/virgilproxy/socks/internal/testenv"
)

const benchBytes = 64 << 20

// benchRelay pushes benchBytes per iteration from a client app through the
// relay started by relayFn to a target app, over loopback.
func benchRelay(b *testing.B, relayFn func(client, target net.Conn) func()) {
	ca, pc := tcpPair(b)
	pt, ta := tcpPair(b)
	defer func() {
		for _, c := range []net.Conn{ca, pc, pt, ta} {
			c.Close()
		}
	}()
	wait := relayFn(pc, pt)

	chunk := make([]byte, 1<<20)
	sink := make([]byte, 1<<20)
	b.SetBytes(benchBytes)
	b.ReportAllocs()
	cpu0 := testenv.CPUTime()
	for b.Loop() {
		werr := make(chan error, 1)
		go func() {
			var err error
			for left := benchBytes; left > 0 && err == nil; left -= len(chunk) {
				_, err = ca.Write(chunk)
			}
			werr <- err
		}()
		for left := benchBytes; left > 0; {
			n, err := ta.Read(sink[:min(left, len(sink))])
			if err != nil {
				b.Fatal(err)
			}
			left -= n
		}
		if err := <-werr; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// CPU time (user+system, whole process: relay and both apps) per MiB
	// moved is steadier than MB/s on a loaded machine.
	b.ReportMetric(float64(testenv.CPUTime()-cpu0)/float64(b.N)/(benchBytes>>20), "cpu-ns/MiB")
	ca.CloseWrite()
	ta.CloseWrite()
	wait()
}

func pipeRelay(b *testing.B, wrap func(c, t net.Conn) (net.Conn, net.Conn), wantSpliced bool) func(c, t net.Conn) func() {
	return func(c, t net.Conn) func() {
		c, t = wrap(c, t)
		done := make(chan pipeOut, 1)
		go func() {
			r, err := Pipe(context.Background(), c, t, Options{IdleTimeout: time.Minute})
			done <- pipeOut{r, err}
		}()
		return func() {
			o := <-done
			if o.err != nil {
				b.Errorf("Pipe: %v", o.err)
			}
			if o.res.Spliced != wantSpliced {
				b.Errorf("Spliced = %v, want %v", o.res.Spliced, wantSpliced)
			}
		}
	}
}

// BenchmarkPipeSplice: both ends bare *net.TCPConn (splice on Linux).
func BenchmarkPipeSplice(b *testing.B) {
	benchRelay(b, pipeRelay(b, modes[0].wrap, modes[0].spliced))
}

// BenchmarkPipeFallback: the client end is wrapped, forcing the copy loop.
func BenchmarkPipeFallback(b *testing.B) {
	benchRelay(b, pipeRelay(b, modes[1].wrap, false))
}

// BenchmarkIOCopy is the reference: two io.Copy calls, which splice on
// Linux through a pipe held for the whole copy.
func BenchmarkIOCopy(b *testing.B) {
	benchRelay(b, func(c, t net.Conn) func() {
		var wg sync.WaitGroup
		cp := func(dst, src net.Conn) {
			if _, err := io.Copy(dst, src); err != nil {
				b.Errorf("io.Copy: %v", err)
			}
			dst.(*net.TCPConn).CloseWrite()
		}
		wg.Go(func() { cp(t, c) })
		wg.Go(func() { cp(c, t) })
		return wg.Wait
	})
}
