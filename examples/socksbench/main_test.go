package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/virgilproxy/socks"
)

// startServer serves a socks.Server on a loopback port until the test ends.
func startServer(t *testing.T, srv *socks.Server) string {
	t.Helper()
	if srv.Logger == nil {
		srv.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return l.Addr().String()
}

// runJSON runs socksbench with -json and decodes the report.
func runJSON(t *testing.T, args ...string) (*Report, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"-json", "-progress", "0"}, args...), &stdout, &stderr)
	var rep Report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("stdout is not a JSON report (%v): %q\nstderr: %s", jerr, stdout.String(), stderr.String())
	}
	return &rep, stderr.String(), err
}

// checkReport checks the invariants every successful report satisfies.
func checkReport(t *testing.T, rep *Report, wantBulk, wantRate, wantIdle int, measured bool) {
	t.Helper()
	if rep.Tool != "socksbench" || rep.Failed {
		t.Errorf("tool %q failed %v", rep.Tool, rep.Failed)
	}
	if len(rep.Bulk) != wantBulk || len(rep.Rate) != wantRate || len(rep.Idle) != wantIdle {
		t.Fatalf("got %d bulk, %d rate, %d idle results; want %d, %d, %d", len(rep.Bulk), len(rep.Rate), len(rep.Idle), wantBulk, wantRate, wantIdle)
	}
	for _, b := range rep.Bulk {
		if !b.ChecksumOK || b.Error != "" || b.Bytes != 1<<20 || b.MiBPerSec <= 0 || b.Seconds <= 0 {
			t.Errorf("bulk result %+v", b)
		}
		if measured != (b.ProxyCPUPerGiB != nil) {
			t.Errorf("bulk %s x%d: proxy CPU measured %v, want %v", b.Direction, b.Streams, b.ProxyCPUPerGiB != nil, measured)
		}
	}
	for _, r := range rep.Rate {
		if r.Conns <= 0 || r.ConnsPerSec <= 0 || r.Errors != 0 {
			t.Errorf("rate result %+v", r)
		}
		if !(0 < r.P50Micros && r.P50Micros <= r.P99Micros && r.P99Micros <= r.P999Micros && r.P999Micros <= r.MaxMicros) {
			t.Errorf("rate x%d: percentiles out of order: p50 %v p99 %v p99.9 %v max %v", r.Workers, r.P50Micros, r.P99Micros, r.P999Micros, r.MaxMicros)
		}
		if measured != (r.ProxyCPUMicrosPerConn != nil) {
			t.Errorf("rate x%d: proxy CPU measured %v, want %v", r.Workers, r.ProxyCPUMicrosPerConn != nil, measured)
		}
	}
	for _, x := range rep.Idle {
		if x.Opened != x.Requested || x.Verified != x.Requested || x.Errors != 0 {
			t.Errorf("idle result %+v", x)
		}
		if measured != (x.FDsPerSession != nil) {
			t.Fatalf("idle: descriptors measured %v, want %v", x.FDsPerSession != nil, measured)
		}
		if measured && *x.FDsPerSession < 2 {
			// The measured process is this test: it holds both ends of
			// each session here (client side and target side) and the
			// proxy's two, so at least 2 per session.
			t.Errorf("idle: %v descriptors per session, want at least 2", *x.FDsPerSession)
		}
	}
}

func TestScenarios(t *testing.T) {
	addr := startServer(t, &socks.Server{HTTPConnect: true})
	common := []string{"-bytes", "1M", "-streams", "1,4", "-duration", "300ms", "-workers", "1,8", "-idle", "20", "-idle-hold", "0"}
	tests := []struct {
		name     string
		args     []string
		measured bool
	}{
		{"direct", []string{"-proxy", "direct"}, false},
		{"socks5 measured", []string{"-proxy", "socks5://" + addr, "-proxy-pid", strconv.Itoa(os.Getpid())}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, stderr, err := runJSON(t, append(tt.args, common...)...)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr)
			}
			checkReport(t, rep, 4, 2, 1, tt.measured)
			if !strings.Contains(stderr, "bulk throughput") || !strings.Contains(stderr, "connection rate") {
				t.Errorf("the summary table is missing from stderr:\n%s", stderr)
			}
		})
	}
}

func TestProtocols(t *testing.T) {
	addr := startServer(t, &socks.Server{HTTPConnect: true})
	for _, scheme := range []string{"socks4", "socks4a", "socks5h", "http"} {
		t.Run(scheme, func(t *testing.T) {
			rep, stderr, err := runJSON(t, "-proxy", scheme+"://"+addr, "-scenario", "bulk", "-bytes", "1M", "-streams", "1")
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr)
			}
			checkReport(t, rep, 2, 0, 0, false)
		})
	}
}

// corruptDialer dials the target and flips one byte of each direction.
type corruptDialer struct{}

func (corruptDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &corruptConn{Conn: c}, nil
}

// corruptConn flips the 1000th byte read and the 1000th byte written.
type corruptConn struct {
	net.Conn
	mu         sync.Mutex
	read, wrot int64
}

func flip(p []byte, off *int64) {
	const at = 1000
	if *off <= at && at < *off+int64(len(p)) {
		p[at-*off] ^= 0x40
	}
	*off += int64(len(p))
}

func (c *corruptConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	flip(p[:n], &c.read)
	c.mu.Unlock()
	return n, err
}

func (c *corruptConn) Write(p []byte) (int, error) {
	q := append([]byte(nil), p...)
	c.mu.Lock()
	flip(q, &c.wrot)
	c.mu.Unlock()
	return c.Conn.Write(q)
}

func TestChecksumCatchesCorruption(t *testing.T) {
	addr := startServer(t, &socks.Server{Dialer: corruptDialer{}})
	for _, dir := range []string{"up", "down"} {
		t.Run(dir, func(t *testing.T) {
			rep, _, err := runJSON(t, "-proxy", "socks5://"+addr, "-scenario", "bulk", "-bytes", "64K", "-streams", "1", "-direction", dir)
			if !errors.Is(err, errFailed) {
				t.Fatalf("run: %v, want errFailed", err)
			}
			if !rep.Failed || len(rep.Bulk) != 1 || rep.Bulk[0].ChecksumOK || !strings.Contains(rep.Bulk[0].Error, errChecksum.Error()) {
				t.Errorf("report %+v, want a checksum failure", rep)
			}
		})
	}
}

func TestRunRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"no proxy", nil, errUsage},
		{"remote proxy", []string{"-proxy", "socks5://192.0.2.1:1080"}, errNotLoopback},
		{"remote name", []string{"-proxy", "socks5://proxy.example:1080"}, errNotLoopback},
		{"bad scheme", []string{"-proxy", "ftp://127.0.0.1:21"}, errBadProxy},
		{"bad scenario", []string{"-proxy", "direct", "-scenario", "nap"}, errUsage},
		{"bad workers", []string{"-proxy", "direct", "-workers", "0"}, errUsage},
		{"bad bytes", []string{"-proxy", "direct", "-bytes", "2T"}, errUsage},
		{"bad direction", []string{"-proxy", "direct", "-direction", "sideways"}, errUsage},
		{"compare without files", []string{"-compare"}, errUsage},
		{"compare bad arg", []string{"-compare", "nofile"}, errCompare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			if !errors.Is(err, tt.want) {
				t.Errorf("run(%q) = %v, want %v", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseProxy(t *testing.T) {
	tests := []struct {
		in   string
		want proxySpec
		err  error
	}{
		{"direct", proxySpec{Direct: true}, nil},
		{"socks5://127.0.0.1:1080", proxySpec{Dialer: socks.Dialer{Protocol: socks.ProtocolSOCKS5, ResolveLocally: true, ProxyAddr: "127.0.0.1:1080"}}, nil},
		{"socks5h://u:p@localhost:1", proxySpec{Dialer: socks.Dialer{Protocol: socks.ProtocolSOCKS5, ProxyAddr: "localhost:1", Username: "u", Password: "p"}}, nil},
		{"socks4://127.9.9.9:1080", proxySpec{Dialer: socks.Dialer{Protocol: socks.ProtocolSOCKS4, ProxyAddr: "127.9.9.9:1080"}}, nil},
		{"socks4a://[::1]:1080/", proxySpec{Dialer: socks.Dialer{Protocol: socks.ProtocolSOCKS4a, ProxyAddr: "[::1]:1080"}}, nil},
		{"HTTP://[::ffff:127.0.0.1]:3128", proxySpec{Dialer: socks.Dialer{Protocol: socks.ProtocolHTTPConnect, ProxyAddr: "[::ffff:127.0.0.1]:3128"}}, nil},
		{"socks5://10.0.0.1:1080", proxySpec{}, errNotLoopback},
		{"socks5://[fe80::1%25lo]:1080", proxySpec{}, errNotLoopback},
		{"socks5://127.0.0.1", proxySpec{}, errBadProxy},
		{"socks5://127.0.0.1:0", proxySpec{}, errBadProxy},
		{"socks5://127.0.0.1:70000", proxySpec{}, errBadProxy},
		{"socks5://127.0.0.1:1080/path", proxySpec{}, errBadProxy},
		{"https://127.0.0.1:443", proxySpec{}, errBadProxy},
		{"127.0.0.1:1080", proxySpec{}, errBadProxy},
	}
	for _, tt := range tests {
		got, err := parseProxy(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("parseProxy(%q) error %v, want %v", tt.in, err, tt.err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(socks.Dialer{})); diff != "" {
			t.Errorf("parseProxy(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseSizeAndLists(t *testing.T) {
	sizes := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1, true}, {"64K", 64 << 10, true}, {"1M", 1 << 20, true}, {"1MiB", 1 << 20, true},
		{"2g", 2 << 30, true}, {"1T", 1 << 40, true}, {"2T", 0, false}, {"-1", 0, false}, {"", 0, false}, {"M", 0, false},
	}
	for _, s := range sizes {
		got, err := parseSize(s.in)
		if (err == nil) != s.ok || got != s.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", s.in, got, err, s.want, s.ok)
		}
	}
	got, err := parseIntList(" 1, 64,512 ", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{1, 64, 512}, got); diff != "" {
		t.Errorf("parseIntList (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "0", "1,x", "5000"} {
		if _, err := parseIntList(bad, 4096); !errors.Is(err, errUsage) {
			t.Errorf("parseIntList(%q) = %v, want errUsage", bad, err)
		}
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		in   string
		want procStat
		ok   bool
	}{
		{"1234 (sockd) S 1 1234 1234 0 -1 4194560 500 0 0 0 7 3 2 1 20 0 9 0 100 0 0", procStat{PPID: 1, CPUTicks: 13}, true},
		{"77 (a) b) (c) R 42 77 77 0 -1 0 0 0 0 0 100 50 0 0 20 0 1 0", procStat{PPID: 42, CPUTicks: 150}, true},
		{"1 (x) S 0 1 1", procStat{}, false},
		{"no parens", procStat{}, false},
		{"1 (x) S 0 1 1 0 -1 0 0 0 0 0 -5 0 0 0 20", procStat{}, false},
	}
	for _, tt := range tests {
		got, err := parseStat([]byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("parseStat(%q) error %v, want ok %v", tt.in, err, tt.ok)
			continue
		}
		if err != nil && !errors.Is(err, errBadStat) {
			t.Errorf("parseStat(%q) error %v does not wrap errBadStat", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parseStat(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	v, ok := parseKiBField([]byte("Name:\tx\nVmRSS:\t   4321 kB\nVmSwap: 0 kB\n"), "VmRSS")
	if !ok || v != 4321 {
		t.Errorf("parseKiBField = %d, %v", v, ok)
	}
	if _, ok := parseKiBField([]byte("VmRSS:\n"), "VmRSS"); ok {
		t.Error("parseKiBField accepted an empty value")
	}
}

func TestSampleTreeSelf(t *testing.T) {
	before, err := sampleTree([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	files := make([]*os.File, 10)
	for i := range files {
		if files[i], err = os.Open(os.DevNull); err != nil {
			t.Fatal(err)
		}
	}
	after, err := sampleTree([]int{os.Getpid()})
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if before.Procs < 1 || before.RSSKiB <= 0 {
		t.Errorf("sample %+v", before)
	}
	// Other tests' goroutines may open or close sockets meanwhile only if
	// run in parallel, which these are not.
	if got := after.FDs - before.FDs; got != len(files) {
		t.Errorf("descriptor count grew by %d, want %d", got, len(files))
	}
	if _, err := sampleTree([]int{1 << 30}); err == nil {
		t.Error("sampleTree of a missing process succeeded")
	}
}

// writeReport writes r as JSON into dir and returns the file's path.
func writeReport(t *testing.T, dir, name string, r Report) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r Report) string { return writeReport(t, dir, name, r) }
	rss := 3.5
	d := write("d.json", Report{Tool: "socksbench", Bulk: []BulkResult{{Direction: "up", Streams: 1, MiBPerSec: 2000, ChecksumOK: true}}, Rate: []RateResult{{Workers: 64, Conns: 10, ConnsPerSec: 9000}}})
	v := write("v.json", Report{Tool: "socksbench", Bulk: []BulkResult{{Direction: "up", Streams: 1, MiBPerSec: 1700, ChecksumOK: true}}})
	v2 := write("v2.json", Report{Tool: "socksbench", Rate: []RateResult{{Workers: 64, Conns: 10, ConnsPerSec: 6000}}, Idle: []IdleResult{{Requested: 5, Verified: 5, RSSKiBPerSession: &rss}}})
	a := write("a.json", Report{Tool: "socksbench", Bulk: []BulkResult{{Direction: "up", Streams: 1, MiBPerSec: 800, ChecksumOK: true}}, Rate: []RateResult{{Workers: 64, Conns: 10, ConnsPerSec: 2500}}, Idle: []IdleResult{{Requested: 5, Verified: 5, RSSKiBPerSession: &[]float64{7}[0]}}})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-compare", "direct=" + d, "virgil=" + v, "virgil=" + v2, "dante=" + a}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	md := out.String()
	f2 := func(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }
	for _, want := range []string{
		"| up | 1 | virgil | 1700 | " + f2(1700.0/2000) + " | " + f2(1700.0/800) + " |",
		"| 64 | virgil | 6000 | " + f2(6000.0/9000) + " | " + f2(6000.0/2500) + " |",
		"| virgil | 5/5 | - | " + f2(rss) + " | " + f2(rss/7) + " |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("comparison lacks %q:\n%s", want, md)
		}
	}
}

// TestCompareRounds: -rounds pairs the targets' runs by round, so the
// ratio column is the median of per-round ratios, not a ratio of medians.
func TestCompareRounds(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, rate float64, cpu float64) string {
		// Latencies that move against the rate, so that a mix-up of
		// columns shows: p50 is 1e6/rate µs, p99 twice that.
		return writeReport(t, dir, name, Report{Tool: "socksbench", Rate: []RateResult{{Workers: 64, Conns: 100, ConnsPerSec: rate,
			P50Micros: 1e6 / rate, P99Micros: 2e6 / rate, ProxyCPUMicrosPerConn: &cpu}}})
	}
	// The machine slows down from round to round. Per round, virgil is
	// 1.10, 1.10 and 0.73 times microsocks: the median of those is 1.10,
	// where the ratio of the medians (8800/9000) would say 0.98.
	args := []string{"-compare", "-rounds",
		"virgil=" + write("v1", 11000, 100), "microsocks=" + write("m1", 10000, 110),
		"virgil=" + write("v2", 8800, 120), "microsocks=" + write("m2", 8000, 130),
		"virgil=" + write("v3", 6600, 140), "microsocks=" + write("m3", 9000, 150),
	}
	var out bytes.Buffer
	if err := run(context.Background(), args, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	md := out.String()
	for _, want := range []string{
		"| target | round 1 | round 2 | round 3 | median conns/s | x virgil | x microsocks | p50 us | p99 us | errors | median proxy CPU us/conn |",
		"| virgil | 11000 | 8800 | 6600 | 8800 | 1.00 | 1.10 | 114 | 227 | 0 | 120.0 |",
		"| microsocks | 10000 | 8000 | 9000 | 9000 | 0.91 | 1.00 | 111 | 222 | 0 | 130.0 |",
		"### Connection rate, alternated rounds, 64 workers",
		"64 workers.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("rounds table lacks %q:\n%s", want, md)
		}
	}
}

// TestCompareBulkRounds: bulk rounds get the same pairing by round as
// rate rounds, with MiB/s and proxy CPU per GiB; a round whose checksum
// did not verify counts as failed, not as a throughput.
func TestCompareBulkRounds(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mibs float64, cpu *float64, ok bool) string {
		return writeReport(t, dir, name, Report{Tool: "socksbench", Bulk: []BulkResult{{Direction: "up", Streams: 1,
			Bytes: 1 << 30, MiBPerSec: mibs, ChecksumOK: ok, ProxyCPUPerGiB: cpu}}})
	}
	cpu := func(v float64) *float64 { return &v }
	// Direct slows down from round to round; virgil is 0.80, 0.90 and
	// 0.70 of it, median 0.80, where the ratio of the medians would say
	// 0.90 (1800/2000). Round 3 of dante failed its checksum, so its
	// ratios are medians of two rounds: to direct 0.40 and 0.60.
	args := []string{"-compare", "-rounds",
		"direct=" + write("d1", 2500, nil, true), "virgil=" + write("v1", 2000, cpu(0.2), true), "dante=" + write("a1", 1000, cpu(0.8), true),
		"direct=" + write("d2", 2000, nil, true), "virgil=" + write("v2", 1800, cpu(0.3), true), "dante=" + write("a2", 1200, cpu(0.7), true),
		"direct=" + write("d3", 1500, nil, true), "virgil=" + write("v3", 1050, cpu(0.25), true), "dante=" + write("a3", 900, cpu(0.9), false),
	}
	var out bytes.Buffer
	if err := run(context.Background(), args, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	md := out.String()
	for _, want := range []string{
		"### Bulk throughput, alternated rounds, up, 1 stream\n",
		"up, 1 stream, 1024 MiB per run.",
		"this row's MiB/s divided by NAME's",
		"| target | round 1 | round 2 | round 3 | median MiB/s | x direct | x virgil | x dante | median proxy CPU s/GiB |",
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
		"| direct | 2500 | 2000 | 1500 | 2000 | 1.00 | 1.25 | 2.08 | - |",
		"| virgil | 2000 | 1800 | 1050 | 1800 | 0.80 | 1.00 | 1.75 | 0.250 |",
		"| dante | 1000 | 1200 | FAIL | 1100 | 0.50 | 0.58 | 1.00 | 0.750 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("bulk rounds table lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "p50") {
		t.Errorf("bulk rounds table has latency columns:\n%s", md)
	}
}
