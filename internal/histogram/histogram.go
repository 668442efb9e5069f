// Package histogram is a lock-free log-linear histogram of non-negative integers (latencies
// in microseconds), for percentiles that read what was measured.
//
// Each power of two [2^e, 2^(e+1)) is split into SubBuckets equal buckets; values below
// SubBuckets get one bucket each (exact). A bucket is never wider than 1/SubBuckets of its
// lower bound, and Quantile reports a bucket's midpoint, so a reported quantile is within
// MaxRelativeError (1/32 ≈ 3.1%) of a value that was recorded at that rank. Values past Max
// are counted in the last bucket.
//
// Memory is fixed (Buckets counters, under 5 KiB) and recording is one atomic add: no lock,
// no allocation.
package histogram

import (
	"math"
	"math/bits"
	"sync/atomic"
)

const (
	subBits = 4
	// SubBuckets is the number of buckets per power of two.
	SubBuckets = 1 << subBits
	// maxExp is the highest power of two with buckets of its own: [2^40, 2^41) µs is 12.7 to 25.4 days.
	maxExp = 40
	// Buckets is the number of counters of a Histogram.
	Buckets = (maxExp - subBits + 2) * SubBuckets
	// Max is the largest value counted in a bucket of its own.
	Max = uint64(1)<<(maxExp+1) - 1
	// MaxRelativeError bounds |reported - recorded| / recorded for any quantile.
	MaxRelativeError = 1.0 / (2 * SubBuckets)
)

// Histogram counts values; the zero value is ready. Safe for concurrent use.
type Histogram struct {
	counts [Buckets]atomic.Uint64
}

// Record counts one value.
func (h *Histogram) Record(v uint64) {
	h.counts[index(v)].Add(1)
}

// index is the bucket of v: exact below SubBuckets, then SubBuckets per power of two.
func index(v uint64) int {
	if v < SubBuckets {
		return int(v)
	}
	if v > Max {
		v = Max
	}
	e := bits.Len64(v) - 1 // v in [2^e, 2^(e+1)), e >= subBits
	sub := int(v>>(e-subBits)) - SubBuckets
	return (e-subBits+1)*SubBuckets + sub
}

// bounds returns the bucket i's range [lo, hi).
func bounds(i int) (lo, hi uint64) {
	if i < SubBuckets {
		return uint64(i), uint64(i) + 1
	}
	e := i/SubBuckets + subBits - 1
	sub := uint64(i % SubBuckets)
	shift := e - subBits
	lo = (SubBuckets + sub) << shift
	return lo, lo + 1<<shift
}

// Snapshot is a copy of a Histogram's counts, read bucket by bucket (not one atomic view:
// calls finishing meanwhile may or may not be in it).
type Snapshot struct {
	counts [Buckets]uint64
	total  uint64
}

// Snapshot copies the counts.
func (h *Histogram) Snapshot() *Snapshot {
	s := new(Snapshot)
	for i := range h.counts {
		s.counts[i] = h.counts[i].Load()
		s.total += s.counts[i]
	}
	return s
}

// Count is the number of values in the snapshot.
func (s *Snapshot) Count() uint64 { return s.total }

// Quantile returns the value at quantile q (0..1): the midpoint of the bucket holding the
// value of rank ceil(q·count) (nearest rank); 0 for an empty snapshot.
func (s *Snapshot) Quantile(q float64) float64 {
	if s.total == 0 {
		return 0
	}
	// nearest rank: the smallest value with at least q of the values at or below it, so the
	// p99 of 50 calls is the slowest one (floor(q·(n-1))+1 was the 49th)
	want := uint64(math.Ceil(q * float64(s.total)))
	want = max(want, 1)
	var seen uint64
	for i, n := range s.counts {
		seen += n
		if seen >= want {
			lo, hi := bounds(i)
			if hi-lo == 1 {
				return float64(lo)
			}
			return float64(lo) + float64(hi-lo)/2
		}
	}
	lo, hi := bounds(Buckets - 1)
	return float64(lo) + float64(hi-lo)/2
}
