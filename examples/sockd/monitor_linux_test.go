package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virgilproxy/socks"
	"github.com/virgilproxy/socks/internal/testenv"
)

// buildDaemon compiles this command into a temporary directory.
func buildDaemon(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the daemon with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "sockd")
	out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startDaemon runs the built daemon with env and args on a free loopback
// port and returns its process ID and address once it accepts connections
// (after any re-execution, which happens before it opens its listeners).
func startDaemon(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	p := testenv.StartProcessEnv(t, env, addr, bin, append([]string{"-listen", addr, "-log-level", "error"}, args...)...)
	return p.Pid, addr
}

// processGODEBUG returns the GODEBUG variable of a running process.
func processGODEBUG(t *testing.T, pid int) (string, bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			return v, true
		}
	}
	return "", false
}

// voluntarySwitches sums the voluntary context switches of all threads of a
// process: how often they went to sleep.
func voluntarySwitches(t *testing.T, pid int) int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no threads for %d: %v", pid, err)
	}
	sum := 0
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				sum += n
			}
		}
	}
	return sum
}

// idleWakeups counts the process's sleeps over one second with no traffic.
func idleWakeups(t *testing.T, pid int) int {
	time.Sleep(500 * time.Millisecond) // let start-up work settle
	before := voluntarySwitches(t, pid)
	time.Sleep(time.Second)
	return voluntarySwitches(t, pid) - before
}

// TestLowLatencyReexec builds the daemon and checks that by default it
// re-executes itself, keeping its process ID, with schedtrace added to
// GODEBUG (after the user's own settings), that the runtime then behaves
// differently (its monitor thread polls every 10 ms while idle instead of
// sleeping), that the re-executed daemon serves, and that -low-latency=false
// leaves the process alone.
func TestLowLatencyReexec(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon")
	}
	bin := buildDaemon(t)
	target := testenv.EchoServer(t)

	pid, addr := startDaemon(t, bin, testenv.CleanEnv("GODEBUG=madvdontneed=1"))
	godebug, _ := processGODEBUG(t, pid)
	if want := "madvdontneed=1," + schedtraceSetting; godebug != want {
		t.Errorf("GODEBUG after re-exec = %q, want %q", godebug, want)
	}
	c, err := (&socks.Dialer{ProxyAddr: addr}).Dial("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the re-executed daemon: %q, %v", buf, err)
	}
	c.Close()
	awake := idleWakeups(t, pid)

	pid, _ = startDaemon(t, bin, testenv.CleanEnv(), "-low-latency=false")
	if godebug, ok := processGODEBUG(t, pid); ok {
		t.Errorf("-low-latency=false: GODEBUG = %q, want it unset", godebug)
	}
	asleep := idleWakeups(t, pid)

	t.Logf("idle wake-ups in one second: %d with the monitor kept awake, %d without", awake, asleep)
	if awake < 30 {
		t.Errorf("with the monitor kept awake the idle daemon slept %d times in a second, want about 100 (a 10 ms poll)", awake)
	}
	if asleep >= awake/2 {
		t.Errorf("without it the idle daemon slept %d times in a second, want far fewer than %d", asleep, awake)
	}

	pid, _ = startDaemon(t, bin, testenv.CleanEnv("GODEBUG=schedtrace=60000"))
	if godebug, _ := processGODEBUG(t, pid); godebug != "schedtrace=60000" {
		t.Errorf("a user's own schedtrace was changed: GODEBUG = %q", godebug)
	}
}
