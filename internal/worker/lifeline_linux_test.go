package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/testenv"
)

// The stated bound: everything a worker started is gone this long after its host died.
const goneWithin = 2 * time.Second

const lifelineHostEnv = "MLBRIDGE_TEST_LIFELINE_HOST"

// hostReport is what the helper host prints once its workers and their children run.
type hostReport struct {
	Workers  []int `json:"workers"`
	Children []int `json:"children"` // spawn_children: a subprocess and a multiprocessing child each
	Zygote   int   `json:"zygote"`
	Members  []int `json:"members"` // every process in the workers' (and zygote's) groups
}

// TestHostDeathTakesWorkerDescendants re-runs this test binary as a host whose workers each
// start a subprocess and a multiprocessing child, then kills that host. Every process of the
// workers' groups — worker, its children, the guardian, the zygote — must be gone within 2 s.
// Pdeathsig alone (the code before the lifeline) kills the workers but leaves their children
// running.
func TestHostDeathTakesWorkerDescendants(t *testing.T) {
	if mode := os.Getenv(lifelineHostEnv); mode != "" {
		lifelineHost(mode)
		return
	}
	for _, tc := range []struct {
		mode string
		sig  syscall.Signal
	}{
		{"direct", syscall.SIGKILL},
		{"direct", syscall.SIGTERM},
		{"preload", syscall.SIGKILL},
		{"preload", syscall.SIGTERM},
		// the worker is stopped: its interpreter can do nothing, the guardian still acts
		{"stopped", syscall.SIGKILL},
	} {
		t.Run(tc.mode+"/"+tc.sig.String(), func(t *testing.T) {
			cmd, line := testenv.HelperHost(t, "TestHostDeathTakesWorkerDescendants", lifelineHostEnv+"="+tc.mode)
			var rep hostReport
			if err := json.Unmarshal([]byte(line), &rep); err != nil {
				t.Fatalf("helper host said %q: %v", line, err)
			}
			// Whatever the outcome, nothing started here outlives the test.
			t.Cleanup(func() {
				for _, pid := range rep.Members {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			wantWorkers := map[string]int{"direct": 1, "preload": 2, "stopped": 1}[tc.mode]
			if len(rep.Workers) != wantWorkers || len(rep.Children) != 2*wantWorkers {
				t.Fatalf("helper host reported %+v", rep)
			}
			for _, pid := range slices.Concat(rep.Workers, rep.Children) {
				if !slices.Contains(rep.Members, pid) {
					t.Fatalf("pid %d is not in the workers' groups %v", pid, rep.Members)
				}
			}
			for _, pid := range rep.Members {
				if !alive(pid) {
					t.Fatalf("pid %d already gone before the host died", pid)
				}
			}

			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			dead := time.Now()
			if left := waitGone(rep.Members, dead.Add(goneWithin)); len(left) > 0 {
				t.Fatalf("%s after the host died by %s, still running: %s", goneWithin, tc.sig, describe(left))
			}
			t.Logf("%d processes (%d workers, %d children, zygote %d) gone %s after the host died",
				len(rep.Members), len(rep.Workers), len(rep.Children), rep.Zygote, time.Since(dead).Round(time.Millisecond))
		})
	}
}

// lifelineHost is the helper host: it starts the workers, has each spawn children, reports,
// and waits to be killed.
func lifelineHost(mode string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper host:", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{Bridge: testenv.EchoBridge, Logger: log} // the interpreter: $MLBRIDGE_PYTHON
	var rep hostReport
	n := 1
	if mode == "preload" {
		z, err := StartZygote(cfg)
		if err != nil {
			fail(err)
		}
		cfg.Zygote, rep.Zygote, n = z, z.Pid(), 2
	}
	ctx := context.Background()
	groups := []int{}
	if rep.Zygote != 0 {
		groups = append(groups, rep.Zygote)
	}
	for range n {
		w, err := Start(ctx, cfg)
		if err != nil {
			fail(err)
		}
		c, err := w.Send(ctx, "spawn_children", map[string]any{"seconds": 60}, false)
		if err != nil {
			fail(err)
		}
		raw, err := c.Result(ctx)
		if err != nil {
			fail(err)
		}
		var kids map[string]int
		if err := msgpack.Unmarshal(raw, &kids); err != nil {
			fail(err)
		}
		rep.Workers = append(rep.Workers, w.Pid())
		rep.Children = append(rep.Children, kids["subprocess"], kids["multiprocessing"])
		groups = append(groups, w.Pid())
		if mode == "stopped" {
			if err := syscall.Kill(w.Pid(), syscall.SIGSTOP); err != nil {
				fail(err)
			}
		}
	}
	rep.Members = groupMembers(groups...)
	b, _ := json.Marshal(rep)
	fmt.Printf("%s\n", b)
	time.Sleep(time.Minute) // killed by the test long before
	os.Exit(0)
}

// TestGuardianLeavesWithWorker: while the host lives, the guardian kills nothing (calls keep
// working, children keep running); a graceful shutdown leaves nothing of the worker's group,
// guardian included, with and without a zygote.
func TestGuardianLeavesWithWorker(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, preload := range []bool{false, true} {
		t.Run(fmt.Sprintf("preload=%v", preload), func(t *testing.T) {
			var z *Zygote
			if preload {
				var err error
				z, err = StartZygote(Config{Python: testenv.Python(t), Bridge: testenv.EchoBridge, Logger: log})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = z.Close() })
			}
			w := startEcho(t, log, z)
			kids := callEcho[map[string]int](t, w, "spawn_children", map[string]any{"seconds": 60})
			members := groupMembers(w.Pid())
			t.Cleanup(func() {
				for _, pid := range members {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			// The group: the worker, its two children, and the guardian, a child of this host.
			var guardians []int
			for _, pid := range members {
				if pid != w.Pid() && parentOf(pid) == os.Getpid() {
					guardians = append(guardians, pid)
				}
			}
			if len(members) != 4 || len(guardians) != 1 || !slices.Contains(members, kids["subprocess"]) ||
				!slices.Contains(members, kids["multiprocessing"]) {
				t.Fatalf("worker %d's group %s: want the worker, its children %v and one guardian", w.Pid(), describe(members), kids)
			}
			if got := callEcho[int](t, w, "add", map[string]any{"a": 2, "b": 3}); got != 5 {
				t.Fatalf("add = %d", got)
			}
			for _, pid := range members {
				if !alive(pid) {
					t.Fatalf("pid %d of the worker's group died while the host lives", pid)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := w.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if left := waitGone(members, time.Now().Add(goneWithin)); len(left) > 0 {
				t.Fatalf("after a graceful shutdown, still running: %s", describe(left))
			}
			if z != nil { // the zygote and its own guardian run on, until closed
				zm := groupMembers(z.Pid())
				if len(zm) != 2 {
					t.Fatalf("zygote group %s: want the zygote and its guardian", describe(zm))
				}
				_ = z.Close()
				if left := waitGone(zm, time.Now().Add(goneWithin)); len(left) > 0 {
					t.Fatalf("after the zygote closed, still running: %s", describe(left))
				}
			}
		})
	}
}

// waitGone polls until every pid is gone or the deadline passes; it returns those left.
func waitGone(pids []int, deadline time.Time) []int {
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stat returns the fields of /proc/pid/stat after the command name (state first), or nil.
func stat(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
}

// alive reports whether pid runs; a zombie waiting to be reaped counts as gone.
func alive(pid int) bool {
	f := stat(pid)
	return len(f) > 0 && f[0] != "Z"
}

func parentOf(pid int) int {
	if f := stat(pid); len(f) > 1 {
		ppid, _ := strconv.Atoi(f[1])
		return ppid
	}
	return 0
}

// groupMembers lists the live processes whose process group is one of groups.
func groupMembers(groups ...int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if f := stat(pid); len(f) > 2 && f[0] != "Z" {
			if pgrp, err := strconv.Atoi(f[2]); err == nil && slices.Contains(groups, pgrp) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// describe names processes by pid and command line.
func describe(pids []int) string {
	var parts []string
	for _, pid := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		parts = append(parts, fmt.Sprintf("%d (%s)", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))))
	}
	return strings.Join(parts, ", ")
}
