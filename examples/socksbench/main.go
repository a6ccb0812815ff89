// Command socksbench loads a SOCKS4, SOCKS4a, SOCKS5 or HTTP CONNECT proxy on
// this host (or no proxy at all, to measure the baseline) against its own
// target server, and reports throughput, connection rate and latency, and the
// cost of idle sessions.
//
// Usage:
//
//	socksbench -proxy socks5://127.0.0.1:1080 [-proxy-pid PID] [-scenario all] [-json]
//	socksbench -proxy direct -scenario rate -workers 1,64
//	socksbench -compare direct=d.json virgil=v.json dante=a.json > results.md
//
// # Scenarios
//
// bulk: for each -streams count and direction, moves -bytes (in total, split
// evenly over the streams) through the proxy, up (client to target) or down
// (target to client), and verifies every stream's CRC-32C: for "up" the
// client announces the length and sends a deterministic pseudo-random stream,
// and the target's sink answers with the count and checksum of what it read;
// for "down" the target's source sends that stream followed by its checksum.
// A mismatch fails the run. (The length is announced rather than marked by a
// half-close, which microsocks does not relay.)
//
// rate: for each -workers count, that many loops of connect, 64-byte
// request, 64-byte echo, close, for -duration or until -max-conns
// connections were started. It reports connections per second and the
// latency (dial to close) at p50, p99 and p99.9, from a log-linear histogram
// of fixed size (at most 1/128 relative error) per worker, merged at the end.
//
// idle: opens -idle sessions (handshake and a 1-byte echo each, so that the
// relay is running), holds them for -idle-hold, samples the proxy, checks
// that every session still echoes, and closes them. With -proxy-pid it
// reports the growth of the proxy's RSS, PSS and open descriptors per session.
//
// "all" runs idle first (so that the proxy's memory is not inflated by the
// other scenarios), then rate, then bulk.
//
// # Proxy measurements
//
// -proxy-pid takes one or more process ids (comma-separated). socksbench sums
// over each of them and all their descendants, found through the parent
// links in /proc, so a forking proxy (Dante's danted keeps its sessions in
// io-child processes, 32 each) is measured whole: VmRSS and Pss from
// /proc/PID/status and smaps_rollup, entries of /proc/PID/fd, and CPU time
// (utime+stime+cutime+cstime, in USER_HZ = 100 ticks per second) from
// /proc/PID/stat. Summed RSS counts the pages a forked child shares with its
// parent once per process; PSS divides them among the sharers. The CPU time
// of the tree before and after each run gives CPU seconds per GiB relayed
// (bulk) and CPU microseconds per connection (rate).
//
// # Safety
//
// Only loopback proxies are accepted (127.0.0.0/8, ::1, localhost): the
// target is an in-process server on 127.0.0.1, and all traffic stays on this
// host. Every loop is bounded in count and in time: -duration and -max-conns
// per rate run, -timeout per dial and per second of transfer, and -limit for
// the whole invocation. socksbench raises its own RLIMIT_NOFILE soft limit
// to the hard limit at start, since idle sessions need two descriptors each
// on this side (client and target).
//
// # Output
//
// Progress goes to standard error every -progress (0 disables it). At the
// end a summary table goes to standard output, or, with -json, the Report
// as JSON to standard output and the table to standard error. The exit
// status is 1 when a checksum did not verify or a scenario completed nothing.
//
// -compare reads name=file.json arguments (several files under one name are
// merged) and writes markdown tables with each result as a ratio to the
// report named by -direct-name and to the one named by -ref-name. With
// -rounds, the files under each name are rounds of one connection-rate run,
// or of one bulk run (one direction and stream count), in which the targets
// took turns; it writes one table of the rounds, their medians, and each
// pair's median ratio over the rounds.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "socksbench:", err)
		if errors.Is(err, errFailed) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}

// errFailed is returned when the benchmark ran but a result failed.
var errFailed = errors.New("a run failed (see the table)")

// errUsage is wrapped by flag value errors.
var errUsage = errors.New("usage")

// parseIntList parses "1,16" into positive integers no larger than limit.
func parseIntList(s string, limit int) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > limit {
			return nil, fmt.Errorf("%w: %q is not an integer from 1 to %d", errUsage, f, limit)
		}
		out = append(out, n)
	}
	if len(out) == 0 || len(out) > 64 {
		return nil, fmt.Errorf("%w: %q: give 1 to 64 numbers", errUsage, s)
	}
	return out, nil
}

// parseSize parses a byte count with an optional K, M, G or T suffix (powers
// of 1024; "KiB", "MB" and the like are accepted too).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%w: size %q: want a number with an optional K, M, G or T suffix, at most 1T", errUsage, s)
	}
	return n * mult, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("socksbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	proxyURL := fs.String("proxy", "", "proxy `URL` (socks4://, socks4a://, socks5://, socks5h://, http://; loopback only) or direct")
	scenario := fs.String("scenario", "all", "bulk, rate, idle or all")
	streamsFlag := fs.String("streams", "1,16", "bulk: comma-separated stream counts")
	bytesFlag := fs.String("bytes", "1G", "bulk: bytes per run, split evenly over the streams (K, M, G suffixes)")
	direction := fs.String("direction", "both", "bulk: up (client to target), down, or both")
	workersFlag := fs.String("workers", "1,64,512", "rate: comma-separated worker counts")
	duration := fs.Duration("duration", 10*time.Second, "rate: length of each run")
	maxConns := fs.Int64("max-conns", 10_000_000, "rate: cap on connections started per run")
	idleN := fs.Int("idle", 1000, "idle: sessions to open and hold")
	idleHold := fs.Duration("idle-hold", 2*time.Second, "idle: how long to hold the sessions before sampling")
	pidsFlag := fs.String("proxy-pid", "", "comma-separated `PIDs` of the proxy; each is measured with all its descendants")
	jsonOut := fs.Bool("json", false, "write the report as JSON to stdout (the table goes to stderr)")
	progress := fs.Duration("progress", 2*time.Second, "progress interval on stderr (0: none)")
	timeout := fs.Duration("timeout", 5*time.Second, "bound on each dial and on each second of transfer without progress")
	limit := fs.Duration("limit", 30*time.Minute, "bound on the whole invocation")
	compare := fs.Bool("compare", false, "compare reports: arguments are name=file.json; writes markdown to stdout")
	directName := fs.String("direct-name", "direct", "compare: the name of the no-proxy baseline")
	refName := fs.String("ref-name", "dante", "compare: the name of the reference proxy")
	rounds := fs.Bool("rounds", false, "compare: the files under each name are alternated rounds of one connection-rate or bulk run; write one table of rounds, medians and pairwise ratios")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *compare {
		if fs.NArg() == 0 {
			return fmt.Errorf("%w: -compare needs name=file.json arguments", errUsage)
		}
		reps, err := loadReports(fs.Args())
		if err != nil {
			return err
		}
		if *rounds {
			writeRounds(stdout, reps)
			return nil
		}
		writeComparison(stdout, reps, *directName, *refName)
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *proxyURL == "" {
		return fmt.Errorf("%w: -proxy is required (a proxy URL or direct)", errUsage)
	}
	spec, err := parseProxy(*proxyURL)
	if err != nil {
		return err
	}
	scen := map[string]bool{}
	switch *scenario {
	case "all":
		scen["bulk"], scen["rate"], scen["idle"] = true, true, true
	case "bulk", "rate", "idle":
		scen[*scenario] = true
	default:
		return fmt.Errorf("%w: -scenario %q: want bulk, rate, idle or all", errUsage, *scenario)
	}
	streams, err := parseIntList(*streamsFlag, 1024)
	if err != nil {
		return fmt.Errorf("-streams: %w", err)
	}
	workers, err := parseIntList(*workersFlag, 4096)
	if err != nil {
		return fmt.Errorf("-workers: %w", err)
	}
	total, err := parseSize(*bytesFlag)
	if err != nil {
		return fmt.Errorf("-bytes: %w", err)
	}
	var dirs []string
	switch *direction {
	case "up", "down":
		dirs = []string{*direction}
	case "both":
		dirs = []string{"up", "down"}
	default:
		return fmt.Errorf("%w: -direction %q: want up, down or both", errUsage, *direction)
	}
	if *duration <= 0 || *duration > 10*time.Minute {
		return fmt.Errorf("%w: -duration must be in (0, 10m]", errUsage)
	}
	if *maxConns < 1 {
		return fmt.Errorf("%w: -max-conns must be positive", errUsage)
	}
	if *idleN < 1 || *idleN > 100_000 {
		return fmt.Errorf("%w: -idle must be from 1 to 100000", errUsage)
	}
	if *idleHold < 0 || *idleHold > 10*time.Minute {
		return fmt.Errorf("%w: -idle-hold must be in [0, 10m]", errUsage)
	}
	if *timeout <= 0 || *limit <= 0 {
		return fmt.Errorf("%w: -timeout and -limit must be positive", errUsage)
	}
	var pids []int
	if *pidsFlag != "" {
		if pids, err = parseIntList(*pidsFlag, 1<<22); err != nil {
			return fmt.Errorf("-proxy-pid: %w", err)
		}
		if _, err := sampleTree(pids); err != nil {
			return fmt.Errorf("-proxy-pid: %w", err)
		}
	}
	raiseNoFile(stderr)

	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	tgt, err := startTarget(*timeout)
	if err != nil {
		return err
	}
	defer tgt.close()
	b := &bench{dial: spec.dialer(*timeout), target: tgt.Addr(), timeout: *timeout, pids: pids, meter: &meter{}}
	stopProgress := func() {}
	if *progress > 0 {
		stopProgress = startProgress(b.meter, *progress, stderr)
	}
	defer stopProgress()

	rep := &Report{Tool: "socksbench", Proxy: *proxyURL, ProxyPIDs: pids, Target: tgt.Addr()}
	if scen["idle"] && ctx.Err() == nil {
		r := b.runIdle(ctx, *idleN, *idleHold)
		rep.Idle = append(rep.Idle, r)
		rep.Failed = rep.Failed || r.Opened == 0
	}
	if scen["rate"] {
		for _, w := range workers {
			if ctx.Err() != nil {
				break
			}
			r := b.runRate(ctx, w, *duration, *maxConns)
			rep.Rate = append(rep.Rate, r)
			rep.Failed = rep.Failed || r.Conns == 0
		}
	}
	if scen["bulk"] {
		for _, s := range streams {
			for _, d := range dirs {
				if ctx.Err() != nil {
					break
				}
				if total < int64(s) {
					return fmt.Errorf("%w: -bytes %d is less than one byte per stream", errUsage, total)
				}
				r := b.runBulk(ctx, d, s, total)
				rep.Bulk = append(rep.Bulk, r)
				rep.Failed = rep.Failed || !r.ChecksumOK
			}
		}
	}
	stopProgress()

	if *jsonOut {
		rep.writeTable(stderr)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.writeTable(stdout)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	if rep.Failed {
		return errFailed
	}
	return nil
}

// startProgress prints the meter's line every interval until stopped.
func startProgress(m *meter, every time.Duration, w io.Writer) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if l := m.line(); l != "" {
					fmt.Fprintln(w, "socksbench:", l)
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}
