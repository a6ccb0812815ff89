package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc/PID/stat. The kernel exports
// them in USER_HZ, which is 100 on every Linux architecture Go supports.
const userHZ = 100

// errBadStat is wrapped by errors from parsing /proc/PID/stat.
var errBadStat = errors.New("malformed /proc/PID/stat")

// procStat holds the fields of /proc/PID/stat that socksbench uses.
type procStat struct {
	PPID int
	// CPUTicks is utime+stime+cutime+cstime: the process's own CPU time
	// and that of the children it has reaped, in USER_HZ ticks.
	CPUTicks int64
}

// parseStat parses the contents of /proc/PID/stat. The command name (field
// 2) is in parentheses and may itself contain spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("%w: no command name", errBadStat)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime..cstime are 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("%w: %d fields after the command name, want at least 15", errBadStat, len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("%w: ppid: %v", errBadStat, err)
	}
	var st procStat
	st.PPID = ppid
	for _, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return procStat{}, fmt.Errorf("%w: cpu time %q", errBadStat, s)
		}
		st.CPUTicks += v
	}
	return st, nil
}

// parseKiBField returns the value of a "Name:   123 kB" line in the contents
// of /proc/PID/status or smaps_rollup, and whether it was found.
func parseKiBField(b []byte, name string) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || v < 0 {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// treeSample is a snapshot of a process tree's resources.
type treeSample struct {
	Procs    int   // processes in the tree
	RSSKiB   int64 // sum of VmRSS; counts pages shared after fork once per process
	PSSKiB   int64 // sum of Pss from smaps_rollup (shared pages divided among sharers); -1 if unreadable
	FDs      int   // open descriptors, summed
	CPUTicks int64 // utime+stime+cutime+cstime, summed
}

// CPUSeconds converts the sample's CPU time to seconds.
func (s treeSample) CPUSeconds() float64 { return float64(s.CPUTicks) / userHZ }

// procRoot is /proc; tests may point it elsewhere.
var procRoot = "/proc"

// processTree returns roots and all their descendants, found by walking the
// parent links of every process in /proc. A root that does not exist is an
// error.
func processTree(roots []int) ([]int, error) {
	children := map[int][]int{}
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	const maxProcs = 1 << 20
	for n, e := range ents {
		if n >= maxProcs {
			break
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(b)
		if err != nil {
			continue
		}
		children[st.PPID] = append(children[st.PPID], pid)
	}
	seen := map[int]bool{}
	var out []int
	queue := []int{}
	for _, r := range roots {
		if _, err := os.Stat(filepath.Join(procRoot, strconv.Itoa(r))); err != nil {
			return nil, fmt.Errorf("proxy process %d: %w", r, err)
		}
		queue = append(queue, r)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		queue = append(queue, children[p]...)
	}
	return out, nil
}

// sampleTree sums the resources of roots and their descendants. Processes
// that exit while it reads are skipped.
func sampleTree(roots []int) (treeSample, error) {
	pids, err := processTree(roots)
	if err != nil {
		return treeSample{}, err
	}
	var s treeSample
	for _, pid := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(pid))
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		st, err := parseStat(b)
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue
		}
		rss, _ := parseKiBField(status, "VmRSS")
		fds, err := countFDs(filepath.Join(dir, "fd"))
		if err != nil {
			return treeSample{}, fmt.Errorf("counting descriptors of process %d (run as its user or root): %w", pid, err)
		}
		if s.PSSKiB >= 0 {
			if rollup, err := os.ReadFile(filepath.Join(dir, "smaps_rollup")); err == nil {
				if pss, ok := parseKiBField(rollup, "Pss"); ok {
					s.PSSKiB += pss
				} else {
					s.PSSKiB = -1
				}
			} else {
				s.PSSKiB = -1
			}
		}
		s.Procs++
		s.RSSKiB += rss
		s.FDs += fds
		s.CPUTicks += st.CPUTicks
	}
	return s, nil
}

// countFDs counts the entries of a /proc/PID/fd directory.
func countFDs(dir string) (int, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(4096)
		n += len(names)
		if err != nil || len(names) == 0 {
			break
		}
	}
	return n, nil
}
