package histogram

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// Every bucket's range follows the previous one's, and index maps each end back to it.
func TestBucketsTileTheRange(t *testing.T) {
	var next uint64
	for i := range Buckets {
		lo, hi := bounds(i)
		if lo != next || hi <= lo {
			t.Fatalf("bucket %d: [%d, %d), want to start at %d", i, lo, hi, next)
		}
		if index(lo) != i || index(hi-1) != i {
			t.Fatalf("bucket %d [%d, %d): index(lo)=%d index(hi-1)=%d", i, lo, hi, index(lo), index(hi-1))
		}
		if lo >= SubBuckets && float64(hi-lo)/float64(lo) > 1.0/SubBuckets {
			t.Fatalf("bucket %d [%d, %d) wider than 1/%d of its bound", i, lo, hi, SubBuckets)
		}
		next = hi
	}
	if next != Max+1 {
		t.Fatalf("buckets end at %d, want %d", next, Max+1)
	}
	if index(math.MaxUint64) != Buckets-1 {
		t.Fatal("values past Max not in the last bucket")
	}
}

// The example: a 2 s call read p50 = 2097152 µs with log2 buckets.
func TestTwoSecondsReadTwoSeconds(t *testing.T) {
	var h Histogram
	h.Record(2_000_000)
	got := h.Snapshot().Quantile(0.5)
	if math.Abs(got-2e6)/2e6 > MaxRelativeError {
		t.Fatalf("p50 of one 2 s call: %v µs", got)
	}
}

// Quantiles of random data from µs to minutes stay within MaxRelativeError of the exact
// nearest-rank quantile.
func TestQuantilesWithinTheErrorBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 10, 1000, 100_000} {
		var h Histogram
		vals := make([]uint64, n)
		for i := range vals {
			vals[i] = uint64(math.Exp(r.Float64() * math.Log(600e6))) // 1 µs .. 10 min, log-uniform
			h.Record(vals[i])
		}
		slices.Sort(vals)
		s := h.Snapshot()
		if s.Count() != uint64(n) {
			t.Fatalf("count %d, want %d", s.Count(), n)
		}
		for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 0.999, 1} {
			rank := max(int(math.Ceil(q*float64(n))), 1) // nearest rank
			exact := float64(vals[rank-1])
			got := s.Quantile(q)
			if math.Abs(got-exact) > MaxRelativeError*exact {
				t.Errorf("n=%d q=%v: %v, exact %v (error %.2f%%)", n, q, got, exact, 100*math.Abs(got-exact)/exact)
			}
		}
	}
	if (&Histogram{}).Snapshot().Quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
}

func TestConcurrentRecord(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(uint64(g*1000 + i))
			}
		})
	}
	wg.Wait()
	if c := h.Snapshot().Count(); c != 8000 {
		t.Fatalf("count %d", c)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		v := uint64(1)
		for pb.Next() {
			h.Record(v)
			v = v*7 + 13&(1<<30-1)
		}
	})
}

// Nearest rank on few values: the p99 of 50 calls is the slowest one, the p90 of three values
// is the largest (a slow outlier of a low-volume op must show).
func TestQuantileNearestRankOnFewValues(t *testing.T) {
	var h Histogram
	for range 49 {
		h.Record(1000)
	}
	h.Record(5_000_000)
	s := h.Snapshot()
	if p99 := s.Quantile(0.99); p99 < 4_800_000 {
		t.Fatalf("p99 of 49×1 ms and one 5 s = %v µs, want about 5 s", p99)
	}
	if p50 := s.Quantile(0.50); p50 > 1100 {
		t.Fatalf("p50 = %v µs, want about 1 ms", p50)
	}
	var few Histogram
	for _, v := range []uint64{10, 20, 3000} {
		few.Record(v)
	}
	if p90 := few.Snapshot().Quantile(0.9); p90 < 2900 {
		t.Fatalf("p90 of {10, 20, 3000} = %v, want about 3000", p90)
	}
}
