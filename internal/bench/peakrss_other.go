//go:build unix && !linux

package bench

import "syscall"

// resetPeakRSS cannot reset the peak here: peakRSS is the whole run's.
func resetPeakRSS() {}

// peakRSS is the process's peak resident set (getrusage; bytes on macOS).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss)
}

// currentRSS is not read here: the baseline is the peak so far.
func currentRSS() int64 { return peakRSS() }
