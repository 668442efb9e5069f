package bench

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/internal/testenv"
)

// workerPids lists this process's children running the worker module.
func workerPids() []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(d + "/cmdline")
		if strings.Contains(string(cmdline), "mlbridge_worker\x00--bridge") {
			pid, _ := strconv.Atoi(filepath.Base(d))
			out = append(out, pid)
		}
	}
	return out
}

// lockedBuffer is a log destination the test reads while the bench writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

// TestBenchSurvivesKilledWorkers: workers SIGKILLed from outside while the benchmark runs
// must not hang it or lose calls silently: it finishes and reports errors and restarts.
func TestBenchSurvivesKilledWorkers(t *testing.T) {
	done := make(chan struct{})
	var rep *Report
	var err error
	var log lockedBuffer
	go func() {
		defer close(done)
		rep, err = Run(context.Background(), Options{
			Scenario: "noop", Workers: 2, Concurrency: 16, Duration: 4 * time.Second, Rounds: 2,
			Python: testenv.Python(t), Bridge: testenv.EchoBridge, Logger: slog.New(slog.NewTextHandler(&log, nil)),
		})
	}()
	// Kills start once the pool is open: a worker killed during its handshake fails the start
	// itself (OpenPool reports why), which is another test's subject.
	for log.count("worker ready") < 2 {
		select {
		case <-done:
			t.Fatalf("bench ended before its workers were ready: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	killed := 0
	for killed < 3 {
		select {
		case <-done:
			t.Fatalf("bench ended before the kills: %v", err)
		case <-time.After(400 * time.Millisecond):
		}
		if pids := workerPids(); len(pids) > 0 {
			if syscall.Kill(pids[0], syscall.SIGKILL) == nil {
				killed++
			}
		}
	}
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if rep.Restarts < 1 || rep.Calls == 0 || rep.CallsPerS <= 0 {
		t.Fatalf("report after %d kills: %+v", killed, rep)
	}
	t.Logf("calls %d errors %d restarts %d", rep.Calls, rep.Errors, rep.Restarts)
}
