package bench

// The array scenario needs shared memory, which Windows workers do not have: no RSS readings.
func resetPeakRSS()     {}
func peakRSS() int64    { return 0 }
func currentRSS() int64 { return 0 }
