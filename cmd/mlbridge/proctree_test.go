//go:build unix

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// procEntry is one line of the process table: a process's parent and its state.
type procEntry struct {
	ppid  int
	state string // ps's STAT: "S", "R", "Z" (exited, not yet reaped) ...
}

// processTable reads every process's parent and state with ps, whose -A -o pid=,ppid=,stat=
// is the same on Linux (procps) and macOS, so one reader serves both.
func processTable() (map[int]procEntry, error) {
	out, err := exec.Command("ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "stat=").Output()
	if err != nil {
		return nil, fmt.Errorf("ps: %w", err)
	}
	table := map[int]procEntry{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		ppid, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			table[pid] = procEntry{ppid: ppid, state: f[2]}
		}
	}
	return table, nil
}

// descendants are root's children, their children, and so on.
func descendants(t testing.TB, root int) []int {
	t.Helper()
	table, err := processTable()
	if err != nil {
		t.Fatal(err)
	}
	children := map[int][]int{}
	for pid, e := range table {
		children[e.ppid] = append(children[e.ppid], pid)
	}
	var out []int
	next := children[root]
	for len(next) > 0 {
		pid := next[0]
		next = append(next[1:], children[pid]...)
		out = append(out, pid)
	}
	return out
}

// running are the pids of pids that still run. A zombie (state Z) has exited: it waits only
// for init, or whichever subreaper inherited it, to reap it.
func running(pids []int) ([]int, error) {
	var maybe []int
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			maybe = append(maybe, pid)
		}
	}
	if len(maybe) == 0 {
		return nil, nil
	}
	table, err := processTable()
	if err != nil {
		return nil, err
	}
	var out []int
	for _, pid := range maybe {
		if e, ok := table[pid]; ok && !strings.HasPrefix(e.state, "Z") {
			out = append(out, pid)
		}
	}
	return out, nil
}
