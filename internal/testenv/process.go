package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Process is a server started by a test.
type Process struct {
	Addr   string // the TCP address it serves on
	Pid    int
	Output interface{ String() string }
}

// StartProcess runs a server in the foreground, in the environment of
// CleanEnv, and waits until addr accepts TCP connections. It is killed,
// and its output logged on failure, at the end of the test.
func StartProcess(t testing.TB, addr string, path string, args ...string) *Process {
	t.Helper()
	return StartProcessEnv(t, CleanEnv(), addr, path, args...)
}

// StartProcessEnv is StartProcess with the environment env.
func StartProcessEnv(t testing.TB, env []string, addr string, path string, args ...string) *Process {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = processAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		killTree(cmd.Process)
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(path), out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return &Process{Addr: addr, Pid: cmd.Process.Pid, Output: out}
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before serving on %s:\n%s", path, addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not serve on %s within 10s:\n%s", path, addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// DanteUser is the system account that .ci/run creates for tests of
// Dante's username method, which checks the system password database.
const (
	DanteUser     = "virgiltest"
	DantePassword = "virgil-test-pw"
)

// Dante starts Dante's sockd (danted) on a free loopback port with the
// given socksmethod line ("none" or "username") and rules that pass
// everything from loopback. It returns the process.
func Dante(t testing.TB, socksmethod string) *Process {
	t.Helper()
	danted := Tool(t, "danted", "dante-server")
	if socksmethod == "username" {
		if _, err := os.Stat("/etc/passwd"); err != nil || !hasSystemUser(DanteUser) {
			msg := "system user " + DanteUser + " is missing (.ci/run creates it for Dante's username method)"
			if InCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	port := FreePort(t)
	dir := t.TempDir()
	conf := "logoutput: stderr\n" +
		"internal: 127.0.0.1 port = " + strconv.Itoa(port) + "\n" +
		"external: 127.0.0.1\n" +
		"socksmethod: " + socksmethod + "\n" +
		"clientmethod: none\n" +
		"user.privileged: root\n" +
		"user.unprivileged: nobody\n" +
		"timeout.negotiate: 10\n" +
		"client pass { from: 127.0.0.0/8 to: 0/0\n log: error\n}\n" +
		"socks pass { from: 127.0.0.0/8 to: 0/0\n command: bind connect udpassociate bindreply udpreply\n log: connect disconnect error\n}\n"
	path := filepath.Join(dir, "sockd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return StartProcess(t, "127.0.0.1:"+strconv.Itoa(port), danted, "-f", path, "-p", filepath.Join(dir, "sockd.pid"))
}

func hasSystemUser(name string) bool {
	data, err := os.ReadFile("/etc/passwd")
	return err == nil && bytes.Contains(data, []byte("\n"+name+":"))
}

// Microsocks starts microsocks on a free loopback port, with
// username/password authentication when user is not empty.
func Microsocks(t testing.TB, user, password string) *Process {
	t.Helper()
	bin := Tool(t, "microsocks", "microsocks")
	port := FreePort(t)
	args := []string{"-i", "127.0.0.1", "-p", strconv.Itoa(port)}
	if user != "" {
		args = append(args, "-u", user, "-P", password)
	}
	return StartProcess(t, "127.0.0.1:"+strconv.Itoa(port), bin, args...)
}

// Tinyproxy starts tinyproxy, an HTTP proxy that serves CONNECT, on a
// free loopback port, with Basic authentication when user is not empty.
func Tinyproxy(t testing.TB, user, password string) *Process {
	t.Helper()
	bin := Tool(t, "tinyproxy", "tinyproxy")
	port := FreePort(t)
	conf := "Port " + strconv.Itoa(port) + "\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nMaxClients 50\nLogLevel Info\n"
	if os.Geteuid() == 0 {
		conf += "User nobody\nGroup nogroup\n"
	}
	if user != "" {
		conf += "BasicAuth " + user + " " + password + "\n"
	}
	path := filepath.Join(t.TempDir(), "tinyproxy.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return StartProcess(t, "127.0.0.1:"+strconv.Itoa(port), bin, "-d", "-c", path)
}
