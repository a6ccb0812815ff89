package socks_test

import (
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

// Real third-party clients against our server.

func splitAddr(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}

func runTool(t *testing.T, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %v did not finish within %v; output:\n%s", name, args, timeout, out)
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func nodeModules(t *testing.T) string {
	t.Helper()
	testenv.Tool(t, "node", "nodejs")
	dir := os.Getenv("VIRGIL_NODE_MODULES")
	if dir == "" {
		dir = "/opt/virgil-node/node_modules"
	}
	if _, err := os.Stat(filepath.Join(dir, "socks")); err != nil {
		msg := "the npm package socks is not installed in " + dir + " (.ci/run installs it)"
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// TestNodeSocksBind: the npm package "socks" drives BIND, SOCKS4 and SOCKS5.
func TestNodeSocksBind(t *testing.T) {
	mods := nodeModules(t)
	for _, version := range []string{"4", "5"} {
		t.Run("socks"+version, func(t *testing.T) {
			ts := startServer(t, &socks.Server{})
			host, port := splitAddr(t, ts.addr)
			out := runTool(t, 20*time.Second, testenv.CleanEnv("NODE_PATH="+mods), "node", "testdata/clients/bind.js", host, port, version)
			f := strings.Fields(out)
			if len(f) != 3 || f[0] != "OK" || f[1] != f[2] {
				t.Fatalf("node bind client: %q; want OK and the peer's address twice", out)
			}
			reqs := ts.rec.all()
			if len(reqs) != 1 || reqs[0].Command != socks.CommandBind {
				t.Fatalf("requests %+v, want one BIND", reqs)
			}
		})
	}
}

// TestNcat: nmap's ncat through each of our protocols.
func TestNcat(t *testing.T) {
	ncat := testenv.Tool(t, "ncat", "ncat")
	target := testenv.LineServer(t, "echo:")
	thost, tport := splitAddr(t, target)
	for _, typ := range []string{"socks4", "socks5", "http"} {
		t.Run(typ, func(t *testing.T) {
			ts := startServer(t, &socks.Server{HTTPConnect: true})
			cmd := exec.Command(ncat, "--proxy", ts.addr, "--proxy-type", typ, thost, tport)
			cmd.Env = testenv.CleanEnv()
			cmd.Stdin = strings.NewReader("hello ncat\n")
			cmd.WaitDelay = 10 * time.Second
			timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
			out, err := cmd.Output()
			timer.Stop()
			if err != nil || string(out) != "echo:hello ncat\n" {
				t.Fatalf("ncat printed %q, %v", out, err)
			}
			if n := len(ts.rec.all()); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

// TestProxychains: proxychains4 sends an ordinary program (curl) through
// our server without the program knowing.
func TestProxychains(t *testing.T) {
	pc := testenv.Tool(t, "proxychains4", "proxychains4")
	curl := testenv.Tool(t, "curl", "curl")
	target := httpTarget(t)
	for _, typ := range []string{"socks4", "socks5", "http"} {
		t.Run(typ, func(t *testing.T) {
			ts := startServer(t, &socks.Server{HTTPConnect: true})
			host, port := splitAddr(t, ts.addr)
			conf := filepath.Join(t.TempDir(), "proxychains.conf")
			os.WriteFile(conf, []byte("strict_chain\nquiet_mode\ntcp_read_time_out 5000\ntcp_connect_time_out 5000\n[ProxyList]\n"+typ+" "+host+" "+port+"\n"), 0o644)
			out := runTool(t, 20*time.Second, testenv.CleanEnv(), pc, "-q", "-f", conf, curl, "-sS", "--max-time", "10", target.URL)
			if out != body {
				t.Fatalf("curl through proxychains printed %q", out)
			}
			reqs := ts.rec.all()
			if len(reqs) != 1 || reqs[0].Dest.Port != uint16(mustAtoi(t, strings.TrimPrefix(target.URL[strings.LastIndexByte(target.URL, ':'):], ":"))) {
				t.Fatalf("requests %+v, want one to the target", reqs)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSocksifyUDP: Dante's socksify makes netcat's UDP socket use our
// UDP ASSOCIATE.
func TestSocksifyUDP(t *testing.T) {
	socksify := testenv.Tool(t, "socksify", "dante-client")
	nc := testenv.Tool(t, "nc", "netcat-openbsd")
	echo := testenv.UDPEchoServer(t, "127.0.0.1")
	ts := startServer(t, &socks.Server{})
	cmd := exec.Command(socksify, nc, "-u", "-w", "2", "127.0.0.1", strconv.Itoa(echo.Port))
	cmd.Env = testenv.CleanEnv("SOCKS5_SERVER="+ts.addr, "SOCKS_AUTOADD_LANROUTES=no")
	cmd.Stdin = strings.NewReader("hello over udp\n")
	timer := time.AfterFunc(15*time.Second, func() { cmd.Process.Kill() })
	out, err := cmd.Output()
	timer.Stop()
	if err != nil || string(out) != "hello over udp\n" {
		t.Fatalf("socksify nc -u printed %q, %v", out, err)
	}
	reqs := ts.rec.all()
	if len(reqs) != 1 || reqs[0].Command != socks.CommandAssociate {
		t.Fatalf("requests %+v, want one UDP ASSOCIATE", reqs)
	}
	waitFor(t, func() bool { return strings.Contains(ts.log.String(), "bytes_to_client=15") }, "the association's byte counts")
}

// TestPySocksUDP: Python's socks module (PySocks) sends datagrams through
// our UDP ASSOCIATE.
func TestPySocksUDP(t *testing.T) {
	python := testenv.Tool(t, "/usr/bin/python3", "python3")
	if err := exec.Command(python, "-c", "import socks").Run(); err != nil {
		msg := "Python module socks is missing (Debian package python3-socks)"
		if testenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	echo := testenv.UDPEchoServer(t, "127.0.0.1")
	ts := startServer(t, &socks.Server{})
	host, port := splitAddr(t, ts.addr)
	out := runTool(t, 20*time.Second, testenv.CleanEnv(), python, "testdata/clients/udp.py", host, port, "127.0.0.1", strconv.Itoa(echo.Port))
	if strings.TrimSpace(out) != "OK "+echo.String() {
		t.Fatalf("udp.py printed %q, want OK %s", out, echo)
	}
}
