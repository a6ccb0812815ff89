package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is socksbench's JSON output (-json).
type Report struct {
	Tool      string       `json:"tool"` // always "socksbench"
	Proxy     string       `json:"proxy"`
	ProxyPIDs []int        `json:"proxy_pids,omitempty"`
	Target    string       `json:"target"`
	Bulk      []BulkResult `json:"bulk,omitempty"`
	Rate      []RateResult `json:"rate,omitempty"`
	Idle      []IdleResult `json:"idle,omitempty"`
	// Failed is true when a checksum did not verify or a scenario could not
	// complete a single connection.
	Failed bool `json:"failed"`
}

func optf(p *float64, format string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf(format, *p)
}

// writeTable writes the human summary.
func (r *Report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "socksbench: proxy %s, target %s\n", r.Proxy, r.Target)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	if len(r.Bulk) > 0 {
		fmt.Fprintln(w, "\nbulk throughput")
		fmt.Fprintln(tw, "direction\tstreams\tMiB\tseconds\tMiB/s\tchecksum\tproxy CPU s/GiB\t")
		for _, b := range r.Bulk {
			ok := "ok"
			if !b.ChecksumOK {
				ok = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.0f\t%s\t%s\t\n", b.Direction, b.Streams, float64(b.Bytes)/(1<<20), b.Seconds, b.MiBPerSec, ok, optf(b.ProxyCPUPerGiB, "%.3f"))
		}
		tw.Flush()
		for _, b := range r.Bulk {
			if b.Error != "" {
				fmt.Fprintf(w, "  bulk %s x%d: %s\n", b.Direction, b.Streams, b.Error)
			}
		}
	}
	if len(r.Rate) > 0 {
		fmt.Fprintln(w, "\nconnection rate (connect + 64 B request + 64 B echo + close)")
		fmt.Fprintln(tw, "workers\tconns\terrors\tconns/s\tp50 us\tp99 us\tp99.9 us\tmax us\tproxy CPU us/conn\t")
		for _, x := range r.Rate {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t\n", x.Workers, x.Conns, x.Errors, x.ConnsPerSec, x.P50Micros, x.P99Micros, x.P999Micros, x.MaxMicros, optf(x.ProxyCPUMicrosPerConn, "%.1f"))
		}
		tw.Flush()
		for _, x := range r.Rate {
			if x.FirstError != "" {
				fmt.Fprintf(w, "  rate x%d: first error: %s\n", x.Workers, x.FirstError)
			}
		}
	}
	if len(r.Idle) > 0 {
		fmt.Fprintln(w, "\nidle sessions (proxy process tree, per session)")
		fmt.Fprintln(tw, "requested\topened\tverified\tprocs\tRSS KiB/session\tPSS KiB/session\tFDs/session\t")
		for _, x := range r.Idle {
			procs := "-"
			if x.During != nil {
				procs = fmt.Sprint(x.During.Procs)
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", x.Requested, x.Opened, x.Verified, procs, optf(x.RSSKiBPerSession, "%.2f"), optf(x.PSSKiBPerSession, "%.2f"), optf(x.FDsPerSession, "%.3f"))
		}
		tw.Flush()
		for _, x := range r.Idle {
			if x.FirstError != "" {
				fmt.Fprintf(w, "  idle %d: first error: %s\n", x.Requested, x.FirstError)
			}
		}
	}
}

// errCompare is wrapped by -compare errors.
var errCompare = errors.New("socksbench -compare")

// namedReport is one column of a comparison.
type namedReport struct {
	Name string
	Report
}

// loadReports reads name=file arguments; several files under one name are
// merged, in order.
func loadReports(args []string) ([]namedReport, error) {
	var out []namedReport
	index := map[string]int{}
	for _, a := range args {
		name, file, ok := strings.Cut(a, "=")
		if !ok || name == "" || file == "" {
			return nil, fmt.Errorf("%w: argument %q is not name=file.json", errCompare, a)
		}
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errCompare, err)
		}
		var r Report
		err = json.NewDecoder(io.LimitReader(f, 64<<20)).Decode(&r)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errCompare, file, err)
		}
		i, ok := index[name]
		if !ok {
			index[name] = len(out)
			out = append(out, namedReport{Name: name, Report: r})
			continue
		}
		m := &out[i].Report
		m.Bulk = append(m.Bulk, r.Bulk...)
		m.Rate = append(m.Rate, r.Rate...)
		m.Idle = append(m.Idle, r.Idle...)
		m.Failed = m.Failed || r.Failed
	}
	return out, nil
}

// ratio formats a/b, or "-" when either is missing or b is zero.
func ratio(a, b float64, okA, okB bool) string {
	if !okA || !okB || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// writeComparison writes markdown tables comparing the reports: each
// throughput as a ratio to the report named direct and to the one named ref
// (higher is better), and each per-session cost as a ratio to ref (lower is
// better).
func writeComparison(w io.Writer, reps []namedReport, direct, ref string) {
	find := func(name string) *Report {
		for i := range reps {
			if reps[i].Name == name {
				return &reps[i].Report
			}
		}
		return nil
	}
	dr, rr := find(direct), find(ref)
	bulkOf := func(r *Report, dir string, streams int) (BulkResult, bool) {
		if r == nil {
			return BulkResult{}, false
		}
		for _, b := range r.Bulk {
			if b.Direction == dir && b.Streams == streams && b.ChecksumOK {
				return b, true
			}
		}
		return BulkResult{}, false
	}
	rateOf := func(r *Report, workers int) (RateResult, bool) {
		if r == nil {
			return RateResult{}, false
		}
		for _, x := range r.Rate {
			if x.Workers == workers && x.Conns > 0 {
				return x, true
			}
		}
		return RateResult{}, false
	}
	idleOf := func(r *Report) (IdleResult, bool) {
		if r == nil || len(r.Idle) == 0 {
			return IdleResult{}, false
		}
		return r.Idle[len(r.Idle)-1], true
	}

	// Bulk: the set of (direction, streams) in first-seen order.
	type bulkKey struct {
		dir     string
		streams int
	}
	var bulkKeys []bulkKey
	seenB := map[bulkKey]bool{}
	var workers []int
	seenW := map[int]bool{}
	haveIdle := false
	for _, r := range reps {
		for _, b := range r.Bulk {
			k := bulkKey{b.Direction, b.Streams}
			if !seenB[k] {
				seenB[k] = true
				bulkKeys = append(bulkKeys, k)
			}
		}
		for _, x := range r.Rate {
			if !seenW[x.Workers] {
				seenW[x.Workers] = true
				workers = append(workers, x.Workers)
			}
		}
		haveIdle = haveIdle || len(r.Idle) > 0
	}

	if len(bulkKeys) > 0 {
		fmt.Fprintf(w, "### Bulk throughput\n\nMiB/s through the proxy, checksum verified; ratios: higher is better.\n\n")
		fmt.Fprintf(w, "| direction | streams | target | MiB/s | x %s | x %s | proxy CPU s/GiB |\n|---|---:|---|---:|---:|---:|---:|\n", direct, ref)
		for _, k := range bulkKeys {
			d, okD := bulkOf(dr, k.dir, k.streams)
			f, okF := bulkOf(rr, k.dir, k.streams)
			for _, r := range reps {
				b, ok := bulkOf(&r.Report, k.dir, k.streams)
				val := "FAIL"
				if ok {
					val = fmt.Sprintf("%.0f", b.MiBPerSec)
				}
				fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s |\n", k.dir, k.streams, r.Name, val,
					ratio(b.MiBPerSec, d.MiBPerSec, ok, okD), ratio(b.MiBPerSec, f.MiBPerSec, ok, okF), optf(b.ProxyCPUPerGiB, "%.3f"))
			}
		}
		fmt.Fprintln(w)
	}
	if len(workers) > 0 {
		fmt.Fprintf(w, "### Connection rate\n\nConnect + 64-byte request + 64-byte echo + close; latency from dial to close. Ratios of conns/s: higher is better.\n\n")
		fmt.Fprintf(w, "| workers | target | conns/s | x %s | x %s | p50 us | p99 us | p99.9 us | errors | proxy CPU us/conn |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n", direct, ref)
		for _, n := range workers {
			d, okD := rateOf(dr, n)
			f, okF := rateOf(rr, n)
			for _, r := range reps {
				x, ok := rateOf(&r.Report, n)
				if !ok {
					fmt.Fprintf(w, "| %d | %s | FAIL | - | - | - | - | - | - | - |\n", n, r.Name)
					continue
				}
				fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s | %.0f | %.0f | %.0f | %d | %s |\n", n, r.Name, x.ConnsPerSec,
					ratio(x.ConnsPerSec, d.ConnsPerSec, ok, okD), ratio(x.ConnsPerSec, f.ConnsPerSec, ok, okF),
					x.P50Micros, x.P99Micros, x.P999Micros, x.Errors, optf(x.ProxyCPUMicrosPerConn, "%.1f"))
			}
		}
		fmt.Fprintln(w)
	}
	if haveIdle {
		f, okF := idleOf(rr)
		fmt.Fprintf(w, "### Idle sessions\n\nGrowth of the proxy's whole process tree while holding the sessions, per session; ratio to %s: lower is better.\n\n", ref)
		fmt.Fprintf(w, "| target | sessions held | procs | RSS KiB/session | x %s | PSS KiB/session | FDs/session |\n|---|---:|---:|---:|---:|---:|---:|\n", ref)
		for _, r := range reps {
			x, ok := idleOf(&r.Report)
			if !ok {
				continue
			}
			procs := "-"
			if x.During != nil {
				procs = fmt.Sprint(x.During.Procs)
			}
			var a, b float64
			okA := x.RSSKiBPerSession != nil
			okB := okF && f.RSSKiBPerSession != nil
			if okA {
				a = *x.RSSKiBPerSession
			}
			if okB {
				b = *f.RSSKiBPerSession
			}
			fmt.Fprintf(w, "| %s | %d/%d | %s | %s | %s | %s | %s |\n", r.Name, x.Verified, x.Requested, procs,
				optf(x.RSSKiBPerSession, "%.2f"), ratio(a, b, okA, okB), optf(x.PSSKiBPerSession, "%.2f"), optf(x.FDsPerSession, "%.3f"))
		}
		fmt.Fprintln(w)
	}
	var failed []string
	for _, r := range reps {
		if r.Failed {
			failed = append(failed, r.Name)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "**Failures** (a checksum did not verify or a scenario completed nothing): %s\n\n", strings.Join(failed, ", "))
	}
}

// writeRounds writes one table for rounds of one run in which the targets
// took turns (round 1 of each, then round 2 of each, ...), so that a drift
// in the machine's speed hits them alike: each target's result per round
// and their median, and, for each pair of targets, the median over the
// rounds of the row's result divided by the column's in the same round.
// reps holds each target's rounds in order, as loadReports merges them.
// The rounds are connection-rate runs (every rate result is one round; the
// table adds the medians of the rounds' p50 and p99 latencies and proxy
// CPU per connection) or, when there are none, bulk runs (every bulk
// result is one round, all with the same direction and stream count; the
// table adds the median proxy CPU per GiB).
func writeRounds(w io.Writer, reps []namedReport) {
	series, isRate := roundSeries(reps)
	rounds := 0
	for _, s := range series {
		rounds = max(rounds, len(s))
	}
	if rounds == 0 {
		return
	}
	unit, tail := "MiB/s", " median proxy CPU s/GiB |"
	if isRate {
		unit, tail = "conns/s", " p50 us | p99 us | errors | median proxy CPU us/conn |"
	}
	writeRoundsIntro(w, reps[0].Report, isRate, unit)
	fmt.Fprintf(w, "| target |")
	for i := range rounds {
		fmt.Fprintf(w, " round %d |", i+1)
	}
	fmt.Fprintf(w, " median %s |", unit)
	for _, c := range reps {
		fmt.Fprintf(w, " x %s |", c.Name)
	}
	fmt.Fprintf(w, "%s\n|---|", tail)
	for range rounds + 1 + len(reps) + strings.Count(tail, "|") {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintln(w)
	for i, r := range reps {
		fmt.Fprintf(w, "| %s |", r.Name)
		var values, cpus, p50s, p99s []float64
		var errs int64
		for k := range rounds {
			if k >= len(series[i]) || !series[i][k].ok {
				fmt.Fprintf(w, " FAIL |")
				continue
			}
			x := series[i][k]
			fmt.Fprintf(w, " %.0f |", x.value)
			values = append(values, x.value)
			p50s = append(p50s, x.p50)
			p99s = append(p99s, x.p99)
			errs += x.errors
			if x.cpu != nil {
				cpus = append(cpus, *x.cpu)
			}
		}
		fmt.Fprintf(w, " %s |", medianString(values, "%.0f"))
		for j := range reps {
			var ratios []float64
			for k := range rounds {
				if k < len(series[i]) && k < len(series[j]) && series[i][k].ok && series[j][k].ok && series[j][k].value > 0 {
					ratios = append(ratios, series[i][k].value/series[j][k].value)
				}
			}
			fmt.Fprintf(w, " %s |", medianString(ratios, "%.2f"))
		}
		if isRate {
			fmt.Fprintf(w, " %s | %s | %d | %s |\n", medianString(p50s, "%.0f"), medianString(p99s, "%.0f"), errs, medianString(cpus, "%.1f"))
		} else {
			fmt.Fprintf(w, " %s |\n", medianString(cpus, "%.3f"))
		}
	}
	fmt.Fprintln(w)
}

// roundSeries returns each target's rounds: its rate results when any
// target has some (isRate), else its bulk results.
func roundSeries(reps []namedReport) (series [][]roundResult, isRate bool) {
	for _, r := range reps {
		isRate = isRate || len(r.Rate) > 0
	}
	series = make([][]roundResult, len(reps))
	for i, r := range reps {
		if isRate {
			for _, x := range r.Rate {
				series[i] = append(series[i], roundResult{ok: x.Conns > 0, value: x.ConnsPerSec,
					p50: x.P50Micros, p99: x.P99Micros, errors: x.Errors, cpu: x.ProxyCPUMicrosPerConn})
			}
			continue
		}
		for _, x := range r.Bulk {
			series[i] = append(series[i], roundResult{ok: x.Error == "" && x.ChecksumOK && x.Bytes > 0,
				value: x.MiBPerSec, cpu: x.ProxyCPUPerGiB})
		}
	}
	return series, isRate
}

// writeRoundsIntro writes a rounds table's heading and the paragraph
// before it, naming the run from the first target's first round.
func writeRoundsIntro(w io.Writer, first Report, isRate bool, unit string) {
	what := ""
	switch {
	case isRate && len(first.Rate) > 0:
		n := first.Rate[0].Workers
		what = fmt.Sprintf("%d %s", n, plural(n, "worker", "workers"))
		fmt.Fprintf(w, "### Connection rate, alternated rounds, %s\n\n", what)
	case isRate:
		fmt.Fprintf(w, "### Connection rate, alternated rounds\n\n")
	case len(first.Bulk) > 0:
		b := first.Bulk[0]
		streams := fmt.Sprintf("%d %s", b.Streams, plural(b.Streams, "stream", "streams"))
		what = fmt.Sprintf("%s, %s, %.0f MiB per run", b.Direction, streams, float64(b.Bytes)/(1<<20))
		fmt.Fprintf(w, "### Bulk throughput, alternated rounds, %s, %s\n\n", b.Direction, streams)
	default:
		fmt.Fprintf(w, "### Bulk throughput, alternated rounds\n\n")
	}
	if what != "" {
		fmt.Fprintf(w, "%s. ", what)
	}
	fmt.Fprintf(w, "The targets took turns, one run each per round, so that a drift in the machine's speed hits them alike. \"x NAME\" is the median over the rounds of this row's %s divided by NAME's in the same round: higher is better.", unit)
	if isRate {
		fmt.Fprintf(w, " Latencies are medians over the rounds of each run's percentile.")
	}
	fmt.Fprintf(w, "\n\n")
}

// roundResult is one target's result in one round of an alternated run:
// conns/s or MiB/s (value), and what else the table shows of it.
type roundResult struct {
	ok       bool
	value    float64
	p50, p99 float64
	errors   int64
	cpu      *float64
}

// medianString formats the median of xs, or "-" when there is none.
func medianString(xs []float64, format string) string {
	if len(xs) == 0 {
		return "-"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return fmt.Sprintf(format, m)
}

// plural returns one for n == 1 and many otherwise.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
