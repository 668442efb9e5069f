package mlbridge

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// rssPerCall: reading /proc costs microseconds, so MaxRSS is also checked as calls complete.
const rssPerCall = true

// processRSS reads the resident set size of pid — the Python process itself, not the host
// — from /proc/<pid>/statm.
func processRSS(pid int) (int64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(raw))
	if len(fields) < 2 {
		return 0, fmt.Errorf("unexpected statm %q", raw)
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * int64(os.Getpagesize()), nil
}
