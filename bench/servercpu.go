package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The daemon's CPU leaves out PostgreSQL's: the agency table's reads, and with
// the PostgreSQL store or the pgtable sink most of the writing. When the server
// runs on this machine, the harness reads its CPU from /proc around each daemon
// run, so that the stores compare by the work they cost the machine, not only
// by the daemon's share of it.

// procStat is what the harness reads of a process's /proc/<pid>/stat.
type procStat struct {
	comm           string
	ppid           int
	utime, stime   int64 // clock ticks
	cutime, cstime int64 // of its waited-for children
	parsed         bool
}

// readProcStat reads /proc/<pid>/stat (Linux).
func readProcStat(pid int) procStat {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}
	}
	return parseProcStat(b)
}

// parseProcStat parses a stat line: the command name (field 2) is in
// parentheses and may hold spaces; the fields after it are plain.
func parseProcStat(b []byte) procStat {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 15 {
		return procStat{}
	}
	var n [5]int64
	for i, field := range []int{1, 11, 12, 13, 14} { // ppid, utime, stime, cutime, cstime
		v, err := strconv.ParseInt(f[field], 10, 64)
		if err != nil {
			return procStat{}
		}
		n[i] = v
	}
	return procStat{comm: string(b[open+1 : end]), ppid: int(n[0]), utime: n[1], stime: n[2], cutime: n[3], cstime: n[4], parsed: true}
}

// ticks is /proc's clock tick: 100 per second on Linux.
const ticks = time.Second / 100

// findPostmaster finds the PostgreSQL server's main process: the parent of
// this connection's backend, if both are postgres processes of this machine.
// 0 when the server is elsewhere.
func (p *pgServer) findPostmaster(ctx context.Context) int {
	var backend int
	if err := p.db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0
	}
	b := readProcStat(backend)
	if !b.parsed || !strings.HasPrefix(b.comm, "postgres") {
		return 0 // another machine's pid, or none
	}
	if pm := readProcStat(b.ppid); pm.parsed && strings.HasPrefix(pm.comm, "postgres") {
		return b.ppid
	}
	return 0
}

// serverCPU is the CPU the server has used so far: the postmaster's, its live
// children's (backends, background processes), and what it collected of the
// children that exited (a daemon's backends end with its connections). ok is
// false when the server is not on this machine.
func (p *pgServer) serverCPU() (time.Duration, bool) {
	if p.postmaster == 0 {
		return 0, false
	}
	pm := readProcStat(p.postmaster)
	if !pm.parsed {
		return 0, false
	}
	total := pm.utime + pm.stime + pm.cutime + pm.cstime
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, false
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st := readProcStat(pid); st.parsed && st.ppid == p.postmaster {
			total += st.utime + st.stime
		}
	}
	return time.Duration(total) * ticks, true
}
