package mlbridge

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mlbridge/mlbridge/internal/histogram"
)

// WorkerStats describes one worker of a pool.
type WorkerStats struct {
	Slot     int           `json:"slot"`
	Pid      int           `json:"pid"`
	State    string        `json:"state"` // ready, draining, or exited (its slot is replacing it)
	InFlight int           `json:"in_flight"`
	Served   uint64        `json:"served"`
	Errors   uint64        `json:"errors"`
	RSSBytes int64         `json:"rss_bytes"`
	Uptime   time.Duration `json:"uptime_ns"` // since the process started
	Restarts int           `json:"restarts"`  // of its slot
}

// SlotStats describes one of the pool's Size places: how often its worker was replaced and
// why. Pid is 0 while the slot has no live worker, i.e. is starting a new one.
type SlotStats struct {
	Slot        int       `json:"slot"`
	Pid         int       `json:"pid"`
	Restarts    int       `json:"restarts"`
	LastReason  string    `json:"last_reason,omitempty"` // why its latest worker went or failed to start
	LastRestart time.Time `json:"last_restart,omitzero"`
}

// OpStats describes the calls of one op, measured on the Go side (queueing included). The
// percentiles come from a log-linear histogram: each is within 3.1% of a measured duration
// (internal/histogram).
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
	Size       int           `json:"size"` // slots: the fixed size, or the autoscaler's current target
	Ready      int           `json:"ready"`
	Waiting    int           `json:"waiting"`
	OldestWait time.Duration `json:"oldest_wait_ns"` // how long the oldest waiting call has waited
	Crashes    uint64        `json:"crashes"`
	Recycles   uint64        `json:"recycles"`
	Retries    uint64        `json:"retries"`
	Overloaded uint64        `json:"overloaded"`
	Workers    []WorkerStats `json:"workers"`
	Slots      []SlotStats   `json:"slots"`   // the current slots (autoscaling adds and removes them)
	Scaling    ScalingStats  `json:"scaling"` // autoscaling: bounds, target, events
	Ops        []OpStats     `json:"ops"`
	// Batching reports each batched op that has served calls (pool_batch.go), by op.
	Batching map[string]BatchStats `json:"batching,omitempty"`
	// RecentErrors are the latest failed calls, newest first (at most 20; messages cut to 240
	// bytes).
	RecentErrors []CallError `json:"recent_errors"`

	// Migration metrics: Go calls per mode and per API (see WithAPI), and how the Python
	// handlers serve them.
	ByMode   map[CallMode]CallCounts `json:"by_mode"`
	ByAPI    map[string]CallCounts   `json:"by_api"`
	Handlers HandlerStats            `json:"handlers"`
}

// Stats returns a snapshot: per worker and per op.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	s := PoolStats{Size: len(p.slots), Waiting: p.waiters.len(), Scaling: p.scalingStatsLocked()}
	if e := p.waiters.l.Front(); e != nil {
		s.OldestWait = time.Since(e.Value.(*waiter).since)
	}
	var live []*workerHandlers
	if p.failErr != nil {
		s.Error = p.failErr.Error()
	} else if p.closed {
		s.Error = ErrClosed.Error()
	}
	for _, pw := range p.workers {
		ws := WorkerStats{
			Slot: pw.slot.index, Pid: pw.w.Pid(), State: pw.stateName(), InFlight: pw.inflight,
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
	s.Slots = p.slotStatsLocked()
	p.mu.Unlock()
	s.Batching = p.batchStats()
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
	s.Healthy = s.Error == "" && s.Ready >= p.cfg.MinSize
	s.Crashes, s.Recycles = p.stats.crashes.Load(), p.stats.recycles.Load()
	s.Retries, s.Overloaded = p.stats.retries.Load(), p.stats.overloaded.Load()
	s.Ops = p.stats.snapshot()
	s.RecentErrors = p.recent.snapshot()
	s.ByMode, s.ByAPI = p.migration.byMode(), p.migration.byAPI()
	return s
}

// slotStatsLocked reports every slot; a slot's pid is its live worker's (a ready one's
// before a draining one's). The caller holds p.mu.
func (p *Pool) slotStatsLocked() []SlotStats {
	out := make([]SlotStats, len(p.slots))
	for i, sl := range p.slots {
		sl.mu.Lock()
		out[i] = SlotStats{Slot: sl.index, Restarts: sl.restarts, LastReason: sl.lastReason, LastRestart: sl.lastRestart}
		sl.mu.Unlock()
		for _, pw := range p.workers {
			if pw.slot == sl && !pw.dead() && (out[i].Pid == 0 || pw.state == stateReady) {
				out[i].Pid = pw.w.Pid()
			}
		}
	}
	return out
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

// Healthy reports readiness: not failed (an open crash-loop breaker, even while ready workers
// still serve: as Err, Health and PoolStats.Healthy say) or closed, and MinSize ready workers.
func (p *Pool) Healthy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failErr != nil || p.closed {
		return false
	}
	return p.readyLocked() >= p.cfg.MinSize // a fixed pool's MinSize is its Size
}

// poolStats is recorded on every call: atomics and a log-linear histogram, no locks on the
// hot path once an op has been seen.
type poolStats struct {
	ops                                    sync.Map // op -> *opCounters
	crashes, recycles, retries, overloaded atomic.Uint64
}

type opCounters struct {
	op            string
	count, errors atomic.Uint64
	// latencies in µs: percentiles within histogram.MaxRelativeError (3.1%) of what was measured
	hist histogram.Histogram
	otel atomic.Pointer[callOpts] // the op's OpenTelemetry attribute sets, built on first use
}

// UnknownOp is the name under which PoolStats.Ops counts calls of ops the bridge does not
// declare: junk op names from a client must not grow the stats (or a metric's cardinality).
const UnknownOp = "(unknown)"

// record counts one call of op and returns its counters and duration; info, the bridge's
// handshake, tells whether it declares op (looked at only the first time an op is seen, and
// for ops that are never kept).
func (s *poolStats) record(op string, info *Info, start time.Time, err error) (*opCounters, time.Duration) {
	v, ok := s.ops.Load(op)
	if !ok {
		if info == nil {
			op = UnknownOp
		} else if _, declared := info.Handlers[op]; !declared {
			op = UnknownOp
		}
		v, _ = s.ops.LoadOrStore(op, &opCounters{op: op})
	}
	c := v.(*opCounters)
	c.count.Add(1)
	if err != nil {
		c.errors.Add(1)
	}
	d := time.Since(start)
	c.hist.Record(uint64(max(d.Microseconds(), 0)))
	return c, d
}

func (s *poolStats) snapshot() []OpStats {
	var out []OpStats
	s.ops.Range(func(k, v any) bool {
		c := v.(*opCounters)
		h := c.hist.Snapshot()
		out = append(out, OpStats{
			Op: k.(string), Count: c.count.Load(), Errors: c.errors.Load(),
			P50us: h.Quantile(0.50), P90us: h.Quantile(0.90), P99us: h.Quantile(0.99),
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
