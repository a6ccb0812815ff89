package busypoll

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/virgilproxy/socks/internal/testenv"
)

// cpuWhile returns the CPU time the process used while f ran, and how
// long f ran.
func cpuWhile(t *testing.T, f func()) (cpu, wall time.Duration) {
	t.Helper()
	c0, w0 := testenv.CPUTime(), time.Now()
	f()
	return testenv.CPUTime() - c0, time.Since(w0)
}

// kickFor kicks every 500 µs for d, sleeping in between: alone, the
// process would be idle most of the time.
func kickFor(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		Kick()
		time.Sleep(500 * time.Microsecond)
	}
}

// TestSpinsWhileKicked checks the behaviour through the CPU time the
// process uses: with busy polling on, a process that only sleeps and kicks
// keeps a thread running (the runtime polls instead of sleeping in
// epoll_wait); a few windows after the last Kick it is idle again.
func TestSpinsWhileKicked(t *testing.T) {
	const period = 100 * time.Millisecond
	offCPU, offWall := cpuWhile(t, func() { kickFor(period) })

	if err := Enable(2 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	defer Disable()
	onCPU, onWall := cpuWhile(t, func() { kickFor(period) })
	time.Sleep(20 * time.Millisecond) // ten windows without a Kick
	afterCPU, afterWall := cpuWhile(t, func() { time.Sleep(period) })
	t.Logf("CPU/wall: off %v/%v, on %v/%v, after %v/%v", offCPU, offWall, onCPU, onWall, afterCPU, afterWall)

	// On an idle machine the three are about 5%, 100% and 0%. The bounds
	// leave room for a loaded one, where the spinning thread shares its
	// CPU.
	if onCPU < onWall/4 || onCPU < 3*offCPU {
		t.Errorf("kicked: %v of CPU in %v (without busy polling %v in %v): the runtime did not spin", onCPU, onWall, offCPU, offWall)
	}
	if afterCPU > afterWall/10 {
		t.Errorf("after the last kick: %v of CPU in %v: the runtime still spins", afterCPU, afterWall)
	}
}

func TestEnableCounts(t *testing.T) {
	if Enabled() {
		t.Fatal("enabled before any Enable")
	}
	fds := openFiles(t)
	for i := 0; i < 2; i++ {
		if err := Enable(time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	Kick()
	Disable()
	if !Enabled() {
		t.Error("one Disable of two Enables turned it off")
	}
	Disable()
	if Enabled() {
		t.Error("still on after as many Disables as Enables")
	}
	Disable() // one too many: no effect
	if err := Enable(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	Disable()
	// The eventfd is made once and kept (see disable): at most one more
	// descriptor, however often it is turned on.
	if got := openFiles(t); got > fds+1 {
		t.Errorf("open files: %d before, %d after three Enables", fds, got)
	}
	if err := Enable(0); err == nil {
		Disable()
		t.Error("Enable(0) succeeded")
	}
}

func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestTargetData reads a real fdinfo file: an epoll instance of our own
// holding a pipe with known event data.
func TestTargetData(t *testing.T) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(epfd)
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	var data uint64 = 0x7f1c2e0a00000123
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(uint32(data)), Pad: int32(uint32(data >> 32))}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		t.Fatal(err)
	}
	path := "/proc/self/fdinfo/" + strconv.Itoa(epfd)
	got, ok := targetData(path, strconv.Itoa(p[0]))
	if !ok || got != data {
		b, _ := os.ReadFile(path)
		t.Errorf("targetData = %#x, %v; want %#x, true. The file:\n%s", got, ok, data, b)
	}
	if _, ok := targetData(path, strconv.Itoa(p[1])); ok {
		t.Error("found the pipe's write end, which is not in the set")
	}
}
