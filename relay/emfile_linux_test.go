package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"
)

// TestNoPipeFallsBack: when no pipe can be created (the process is out of
// descriptors), a splice-eligible session still relays, through the copy
// loop.
func TestNoPipeFallsBack(t *testing.T) {
	s := startSession(t, context.Background(), modes[0], Options{})
	drainPool()

	// Use up every descriptor slot (lowering the limit first if it is huge).
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur > 1<<16 {
		low := lim
		low.Cur = 1 << 16
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
		}
		defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	var fillers []int
	release := func() {
		for _, fd := range fillers {
			syscall.Close(fd)
		}
		fillers = nil
	}
	defer release()
	for i := 0; i < 1<<16+1; i++ {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fillers = append(fillers, fd)
	}
	if _, err := newPipe(0); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("newPipe with no free descriptors: %v, want EMFILE", err)
	}

	data := randomBytes(t, 256<<10)
	errc := make(chan error, 1)
	go func() {
		_, err := s.clientApp.Write(data)
		if err == nil {
			err = s.clientApp.CloseWrite()
		}
		errc <- err
	}()
	_ = s.targetApp.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(s.targetApp)
	release()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("target got %d bytes, not the %d sent", len(got), len(data))
	}
	s.targetApp.CloseWrite()
	o := s.wait(t, 10*time.Second)
	if o.err != nil {
		t.Fatalf("Pipe: %v", o.err)
	}
	if o.res.Spliced || o.res.ClientToTarget != int64(len(data)) {
		t.Errorf("Result = %+v, want %d bytes up and Spliced false", o.res, len(data))
	}
	if st := ReadPoolStats(); st.InUse != 0 {
		t.Errorf("pool after the session: %+v, want nothing in use", st)
	}
}

// TestPipeSizes: the first largePipes open pipes are enlarged, later ones
// keep the kernel default; the pool keeps at most MaxIdlePipes.
func TestPipeSizes(t *testing.T) {
	drainPool()
	defer drainPool()
	n := max(largePipes, MaxIdlePipes) + 4
	pipes := make([]*pipe, n)
	for i := range pipes {
		p, err := getPipe()
		if err != nil {
			t.Fatal(err)
		}
		pipes[i] = p
	}
	for i, p := range pipes {
		want := 64 << 10
		if i < largePipes {
			want = largePipeSize
		}
		if p.size != want {
			t.Errorf("pipe %d: size %d, want %d", i, p.size, want)
		}
	}
	if st := ReadPoolStats(); st != (PoolStats{InUse: n}) {
		t.Errorf("with %d lent: %+v", n, st)
	}
	for _, p := range pipes {
		putPipe(p)
	}
	if st := ReadPoolStats(); st != (PoolStats{Idle: MaxIdlePipes}) {
		t.Errorf("after returning %d: %+v, want %d idle", n, ReadPoolStats(), MaxIdlePipes)
	}
}
