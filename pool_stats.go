package mlbridge

import (
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// WorkerStats describes one worker of a pool.
type WorkerStats struct {
	Slot     int           `json:"slot"`
	Pid      int           `json:"pid"`
	State    string        `json:"state"`
	InFlight int           `json:"in_flight"`
	Served   uint64        `json:"served"`
	Errors   uint64        `json:"errors"`
	RSSBytes int64         `json:"rss_bytes"`
	Uptime   time.Duration `json:"uptime_ns"`
	Restarts int           `json:"restarts"` // of its slot
}

// OpStats describes the calls of one op, measured on the Go side (queueing included).
type OpStats struct {
	Op     string  `json:"op"`
	Count  uint64  `json:"count"`
	Errors uint64  `json:"errors"`
	P50us  float64 `json:"p50_us"`
	P90us  float64 `json:"p90_us"`
	P99us  float64 `json:"p99_us"`
}

// PoolStats is a snapshot of a pool.
type PoolStats struct {
	Healthy    bool          `json:"healthy"`
	Error      string        `json:"error,omitempty"`
	Size       int           `json:"size"`
	Ready      int           `json:"ready"`
	Waiting    int           `json:"waiting"`
	Crashes    uint64        `json:"crashes"`
	Recycles   uint64        `json:"recycles"`
	Retries    uint64        `json:"retries"`
	Overloaded uint64        `json:"overloaded"`
	Workers    []WorkerStats `json:"workers"`
	Ops        []OpStats     `json:"ops"`

	// Migration metrics: Go calls per mode and per API (see WithAPI), and how the Python
	// handlers serve them.
	ByMode   map[CallMode]CallCounts `json:"by_mode"`
	ByAPI    map[string]CallCounts   `json:"by_api"`
	Handlers HandlerStats            `json:"handlers"`
}

// Stats returns a snapshot: per worker and per op.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	s := PoolStats{Size: p.cfg.Size, Waiting: p.waiters.len()}
	var live []*workerHandlers
	if p.failErr != nil {
		s.Error = p.failErr.Error()
	} else if p.closed {
		s.Error = ErrClosed.Error()
	}
	for _, pw := range p.workers {
		ws := WorkerStats{
			Slot: pw.slot.index, Pid: pw.w.Pid(), State: pw.state.String(), InFlight: pw.inflight,
			Served: pw.served.Load(), Errors: pw.errors.Load(), Uptime: time.Since(pw.w.StartedAt()),
		}
		if pw.state == stateReady && !pw.dead() {
			s.Ready++
		}
		s.Workers = append(s.Workers, ws)
		if h := pw.handlers.Load(); h != nil {
			live = append(live, h)
		}
	}
	s.Handlers = p.migration.handlerStats(live)
	p.mu.Unlock()
	for i := range s.Workers {
		s.Workers[i].RSSBytes, _ = processRSS(s.Workers[i].Pid)
	}
	slotRestarts := map[int]int{}
	for _, w := range s.Workers {
		if _, ok := slotRestarts[w.Slot]; !ok {
			slotRestarts[w.Slot] = p.slotRestarts(w.Slot)
		}
	}
	for i := range s.Workers {
		s.Workers[i].Restarts = slotRestarts[s.Workers[i].Slot]
	}
	slices.SortFunc(s.Workers, func(a, b WorkerStats) int { return a.Slot - b.Slot })
	s.Healthy = s.Error == "" && s.Ready == s.Size
	s.Crashes, s.Recycles = p.stats.crashes.Load(), p.stats.recycles.Load()
	s.Retries, s.Overloaded = p.stats.retries.Load(), p.stats.overloaded.Load()
	s.Ops = p.stats.snapshot()
	s.ByMode, s.ByAPI = p.migration.byMode(), p.migration.byAPI()
	return s
}

func (p *Pool) slotRestarts(index int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pw := range p.workers {
		if pw.slot.index == index {
			pw.slot.mu.Lock()
			defer pw.slot.mu.Unlock()
			return pw.slot.restarts
		}
	}
	return 0
}

// Healthy reports readiness: not failed or closed, and every slot has a ready worker.
func (p *Pool) Healthy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unavailableLocked() != nil {
		return false
	}
	ready := 0
	for _, pw := range p.workers {
		if pw.state == stateReady && !pw.dead() {
			ready++
		}
	}
	return ready == p.cfg.Size
}

// poolStats is recorded on every call: atomics and a fixed log2 histogram, no locks on the
// hot path once an op has been seen.
type poolStats struct {
	ops                                    sync.Map // op -> *opCounters
	crashes, recycles, retries, overloaded atomic.Uint64
}

// buckets[i] counts latencies in [2^(i-1), 2^i) microseconds.
const histBuckets = 40

type opCounters struct {
	count, errors atomic.Uint64
	buckets       [histBuckets]atomic.Uint64
}

// UnknownOp is the name under which PoolStats.Ops counts calls of ops the bridge does not
// declare: junk op names from a client must not grow the stats (or a metric's cardinality).
const UnknownOp = "(unknown)"

// record counts one call of op; info, the bridge's handshake, tells whether it declares op
// (looked at only the first time an op is seen, and for ops that are never kept).
func (s *poolStats) record(op string, info *Info, start time.Time, err error) {
	v, ok := s.ops.Load(op)
	if !ok {
		if info == nil {
			op = UnknownOp
		} else if _, declared := info.Handlers[op]; !declared {
			op = UnknownOp
		}
		v, _ = s.ops.LoadOrStore(op, &opCounters{})
	}
	c := v.(*opCounters)
	c.count.Add(1)
	if err != nil {
		c.errors.Add(1)
	}
	us := uint64(time.Since(start).Microseconds())
	c.buckets[min(bits.Len64(us), histBuckets-1)].Add(1)
}

func (s *poolStats) snapshot() []OpStats {
	var out []OpStats
	s.ops.Range(func(k, v any) bool {
		c := v.(*opCounters)
		var hist [histBuckets]uint64
		var total uint64
		for i := range hist {
			hist[i] = c.buckets[i].Load()
			total += hist[i]
		}
		out = append(out, OpStats{
			Op: k.(string), Count: c.count.Load(), Errors: c.errors.Load(),
			P50us: percentile(hist[:], total, 0.50), P90us: percentile(hist[:], total, 0.90),
			P99us: percentile(hist[:], total, 0.99),
		})
		return true
	})
	slices.SortFunc(out, func(a, b OpStats) int {
		if a.Op < b.Op {
			return -1
		}
		if a.Op > b.Op {
			return 1
		}
		return 0
	})
	return out
}

// percentile returns the upper bound (µs) of the bucket holding quantile q.
func percentile(hist []uint64, total uint64, q float64) float64 {
	if total == 0 {
		return 0
	}
	want := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i, n := range hist {
		seen += n
		if seen >= want {
			return float64(uint64(1) << i)
		}
	}
	return float64(uint64(1) << (len(hist) - 1))
}
