package mlbridge

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// rssPerCall: a reading starts ps (milliseconds), too much for every call, so on macOS MaxRSS
// is checked by the monitor only, every HealthInterval: a fast-growing worker can overshoot
// MaxRSS by what it grows in one interval.
const rssPerCall = false

// processRSS asks ps for the resident set size of pid. macOS has no /proc, and its sysctl
// kern.proc.pid carries no RSS; proc_pidinfo would need cgo. Stats reads it too: one ps per
// worker per Stats call.
func processRSS(pid int) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/bin/ps", "-o", "rss=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return 0, err
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, err
	}
	return kib * 1024, nil
}
