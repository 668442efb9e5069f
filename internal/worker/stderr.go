package worker

import (
	"bufio"
	"io"
	"log/slog"
	"sync"
)

// stderrTail forwards a worker's stderr to slog line by line and keeps the last lines for
// the error that reports the worker's death.
type stderrTail struct {
	mu    sync.Mutex
	lines []string
	max   int
	next  int
	full  bool
	done  chan struct{}
}

func newStderrTail(max int) *stderrTail {
	return &stderrTail{lines: make([]string, max), max: max, done: make(chan struct{})}
}

func (t *stderrTail) run(r io.Reader, log *slog.Logger) {
	defer close(t.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		log.Info(line, "stream", "stderr")
		t.mu.Lock()
		t.lines[t.next] = line
		t.next = (t.next + 1) % t.max
		if t.next == 0 {
			t.full = true
		}
		t.mu.Unlock()
	}
}

// last returns the kept lines, oldest first.
func (t *stderrTail) last() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.full {
		return append([]string(nil), t.lines[:t.next]...)
	}
	return append(append([]string(nil), t.lines[t.next:]...), t.lines[:t.next]...)
}
