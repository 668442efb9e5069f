package bench

import (
	"os"
	"strconv"
	"strings"
)

// resetPeakRSS resets this process's peak resident set to its current one (proc(5),
// /proc/pid/clear_refs, value 5), so peakRSS measures from here.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is this process's peak resident set since the last reset, in bytes (VmHWM).
func peakRSS() int64 { return statusField("VmHWM:") }

// currentRSS is this process's resident set now, in bytes (VmRSS).
func currentRSS() int64 { return statusField("VmRSS:") }

func statusField(name string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
