package mlbridge

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// The instruments a pool is run by: call latency, load, and the workers' lifecycle.
// docs/OBSERVABILITY.md lists them with their units, attributes and meaning.
const (
	MetricCallDuration   = "mlbridge.pool.call.duration"     // histogram, s {bridge, op, outcome}
	MetricCallRetries    = "mlbridge.pool.call.retries"      // {bridge}
	MetricInFlight       = "mlbridge.pool.calls.in_flight"   // {bridge}
	MetricQueueDepth     = "mlbridge.pool.queue.depth"       // {bridge}
	MetricQueueOldest    = "mlbridge.pool.queue.oldest_wait" // s {bridge}
	MetricWorkers        = "mlbridge.pool.workers"           // {bridge, state}
	MetricWedgedWorkers  = "mlbridge.pool.workers.wedged"    // {bridge}
	MetricWorkerRSS      = "mlbridge.pool.worker.rss"        // By {bridge, slot}
	MetricWorkerStarts   = "mlbridge.pool.worker.starts"     // {bridge, outcome}
	MetricWorkerExits    = "mlbridge.pool.worker.exits"      // {bridge, reason}
	MetricWorkerRecycles = "mlbridge.pool.worker.recycles"   // {bridge, reason}
	MetricScaleEvents    = "mlbridge.pool.scale.events"      // {bridge, direction}
	MetricScaleTarget    = "mlbridge.pool.scale.target"      // {bridge}
)

// DurationBuckets returns the call-duration histogram's bucket bounds in seconds: 10 µs (a
// no-op call through a worker) to 10 min (a long generation), in 1-2.5-5 steps.
func DurationBuckets() []float64 {
	return []float64{
		0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
		0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
		0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
	}
}

// Call outcomes: the "outcome" attribute of MetricCallDuration.
const (
	outcomeOK           = iota // "ok"
	outcomeError               // the handler or the bridge answered with an error
	outcomeTimeout             // the call's deadline passed (Go or Python side)
	outcomeCancelled           // the caller's ctx was cancelled
	outcomeOverloaded          // the queue was full (ErrOverloaded)
	outcomeWorkerExited        // its worker died (ErrWorkerExited)
	outcomeUnavailable         // the pool was closed or its crash-loop breaker open
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "error", "timeout", "cancelled", "overloaded", "worker_exited", "unavailable"}

func outcomeOf(err error) int {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrTimeout):
		return outcomeTimeout
	case errors.Is(err, ErrCancelled):
		return outcomeCancelled
	case errors.Is(err, ErrOverloaded):
		return outcomeOverloaded
	case errors.Is(err, ErrWorkerExited):
		return outcomeWorkerExited
	case errors.Is(err, ErrClosed), errors.Is(err, ErrCrashLoop):
		return outcomeUnavailable
	}
	return outcomeError
}

// Why a worker process left the pool: the "reason" attribute of MetricWorkerExits.
type exitReason int

const (
	exitCrash        exitReason = iota // died while in service: killed, OOM, a crashing call
	exitStartFailure                   // died right after it became ready, nothing handed to it
	exitRecycled                       // stopped by a recycle (see recycleReason)
	exitShutdown                       // stopped by Close
	exitScaledDown                     // stopped by the autoscaler, idle
	numExitReasons
)

var exitReasonNames = [numExitReasons]string{"crash", "start_failure", "recycled", "shutdown", "scaled_down"}

// Why the pool replaced a live worker: the "reason" attribute of MetricWorkerRecycles.
type recycleReason int

const (
	recycleMaxRequests recycleReason = iota // served PoolConfig.MaxRequests calls
	recycleMaxAge                           // older than PoolConfig.MaxAge
	recycleRSS                              // RSS over PoolConfig.MaxRSS
	recycleAbandoned                        // holds handler threads that ignored their deadline
	recycleWedged                           // left a liveness ping unanswered
	numRecycleReasons
)

var recycleReasonNames = [numRecycleReasons]string{"max_requests", "max_age", "rss", "abandoned_threads", "wedged"}

// instruments are a pool's synchronous instruments, recorded where things happen; the
// observable ones are read from the pool's state by registerServiceMetrics. Attribute sets
// are built once, so recording allocates nothing the SDK does not.
type instruments struct {
	bridge   attribute.KeyValue
	duration metric.Float64Histogram
	starts   metric.Int64Counter
	exits    metric.Int64Counter
	recycles metric.Int64Counter
	scales   metric.Int64Counter

	startOpts   [2][]metric.AddOption // ok, failed
	scaleOpts   [2][]metric.AddOption // up, down
	exitOpts    [numExitReasons][]metric.AddOption
	recycleOpts [numRecycleReasons][]metric.AddOption
}

// meter is the pool's Meter, on PoolConfig.MeterProvider or else the global provider.
func (p *Pool) meter() metric.Meter {
	mp := p.cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(meterInstrumentor)
}

// newInstruments creates the synchronous instruments before any worker starts (their starts
// count). An instrument the provider refuses is replaced by a no-op one, with a warning.
func (p *Pool) newInstruments() *instruments {
	m := p.meter()
	in := &instruments{bridge: attribute.String("bridge", p.cfg.Name)}
	var errs []error
	var err error
	if in.duration, err = m.Float64Histogram(MetricCallDuration, metric.WithUnit("s"),
		metric.WithDescription("duration of finished calls, queueing included, by op and outcome"),
		metric.WithExplicitBucketBoundaries(DurationBuckets()...)); err != nil {
		errs, in.duration = append(errs, err), noop.Float64Histogram{}
	}
	counter := func(name, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit("{worker}"), metric.WithDescription(desc))
		if err != nil {
			errs = append(errs, err)
			return noop.Int64Counter{}
		}
		return c
	}
	in.starts = counter(MetricWorkerStarts, "worker starts, by outcome (ok, failed)")
	in.exits = counter(MetricWorkerExits, "worker processes that left the pool, by reason")
	in.recycles = counter(MetricWorkerRecycles, "live workers replaced by the pool, by reason")
	if in.scales, err = m.Int64Counter(MetricScaleEvents, metric.WithUnit("{event}"),
		metric.WithDescription("autoscaler decisions, by direction (up, down)")); err != nil {
		errs, in.scales = append(errs, err), noop.Int64Counter{}
	}
	if err := errors.Join(errs...); err != nil {
		p.log.Warn("mlbridge: OpenTelemetry instruments not created", "err", err)
	}

	addOpts := func(key, value string) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(in.bridge, attribute.String(key, value)))}
	}
	in.startOpts = [2][]metric.AddOption{addOpts("outcome", "ok"), addOpts("outcome", "failed")}
	in.scaleOpts = [2][]metric.AddOption{addOpts("direction", "up"), addOpts("direction", "down")}
	for i, name := range exitReasonNames {
		in.exitOpts[i] = addOpts("reason", name)
	}
	for i, name := range recycleReasonNames {
		in.recycleOpts[i] = addOpts("reason", name)
	}
	// Every series exists from the start at 0, so that rate() and alerts see the first event.
	ctx := context.Background()
	for _, o := range in.startOpts {
		in.starts.Add(ctx, 0, o...)
	}
	for _, o := range in.exitOpts {
		in.exits.Add(ctx, 0, o...)
	}
	for _, o := range in.recycleOpts {
		in.recycles.Add(ctx, 0, o...)
	}
	if p.cfg.MinSize < p.cfg.MaxSize { // a fixed pool has no scale series
		for _, o := range in.scaleOpts {
			in.scales.Add(ctx, 0, o...)
		}
	}
	return in
}

// callOpts are the attribute sets of one op's duration series, one per outcome.
type callOpts [numOutcomes][]metric.RecordOption

func (in *instruments) callOptsFor(op string) *callOpts {
	var o callOpts
	for i, name := range outcomeNames {
		o[i] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
			in.bridge, attribute.String("op", op), attribute.String("outcome", name)))}
	}
	return &o
}

// callDone records a finished call of the op c counts.
func (in *instruments) callDone(ctx context.Context, c *opCounters, d time.Duration, err error) {
	opts := c.otel.Load()
	if opts == nil {
		opts = in.callOptsFor(c.op) // two calls racing here build equal sets
		c.otel.Store(opts)
	}
	in.duration.Record(ctx, d.Seconds(), opts[outcomeOf(err)]...)
}

func (in *instruments) started(err error) {
	i := 0
	if err != nil {
		i = 1
	}
	in.starts.Add(context.Background(), 1, in.startOpts[i]...)
}

func (in *instruments) exited(r exitReason) {
	in.exits.Add(context.Background(), 1, in.exitOpts[r]...)
}

func (in *instruments) scaled(up bool) {
	i := 1
	if up {
		i = 0
	}
	in.scales.Add(context.Background(), 1, in.scaleOpts[i]...)
}

func (in *instruments) recycled(r recycleReason) {
	in.recycles.Add(context.Background(), 1, in.recycleOpts[r]...)
}

// registerServiceMetrics installs the observable instruments: load and workers, read from the
// pool's state when the SDK collects.
func (p *Pool) registerServiceMetrics(m metric.Meter) (metric.Registration, error) {
	var errs []error
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	inFlight := gauge(MetricInFlight, "{call}", "calls holding a worker")
	depth := gauge(MetricQueueDepth, "{call}", "calls waiting for a free worker")
	workers := gauge(MetricWorkers, "{worker}", "live workers by state (ready, draining)")
	wedged := gauge(MetricWedgedWorkers, "{worker}", "live workers that left a liveness ping unanswered")
	rss := gauge(MetricWorkerRSS, "By", "resident memory of each slot's worker process")
	target := gauge(MetricScaleTarget, "{worker}", "slots the pool keeps a worker in: its size, or the autoscaler's target")
	oldest, err := m.Float64ObservableGauge(MetricQueueOldest, metric.WithUnit("s"),
		metric.WithDescription("how long the oldest waiting call has waited (0: none waits)"))
	errs = append(errs, err)
	retries, err := m.Int64ObservableCounter(MetricCallRetries, metric.WithUnit("{call}"),
		metric.WithDescription("idempotent calls retried on another worker after theirs died"))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	bridge := metric.WithAttributeSet(attribute.NewSet(p.inst.bridge))
	ready := metric.WithAttributeSet(attribute.NewSet(p.inst.bridge, attribute.String("state", "ready")))
	draining := metric.WithAttributeSet(attribute.NewSet(p.inst.bridge, attribute.String("state", "draining")))
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		l := p.load()
		o.ObserveInt64(inFlight, int64(l.inFlight), bridge)
		o.ObserveInt64(depth, int64(l.waiting), bridge)
		o.ObserveFloat64(oldest, l.oldestWait.Seconds(), bridge)
		o.ObserveInt64(workers, int64(l.ready), ready)
		o.ObserveInt64(workers, int64(l.draining), draining)
		o.ObserveInt64(wedged, int64(l.wedged), bridge)
		o.ObserveInt64(target, int64(l.target), bridge)
		o.ObserveInt64(retries, int64(p.stats.retries.Load()), bridge)
		for slot, pid := range l.slotPids {
			if n, err := processRSS(pid); err == nil {
				o.ObserveInt64(rss, n, metric.WithAttributes(p.inst.bridge, attribute.String("slot", strconv.Itoa(slot))))
			}
		}
		return nil
	}, inFlight, depth, oldest, workers, wedged, rss, retries, target)
}

// poolLoad is what the observable instruments read, taken under one lock.
type poolLoad struct {
	inFlight, waiting, ready, draining, wedged, target int
	oldestWait                                         time.Duration
	slotPids                                           map[int]int // slot -> its ready worker's pid (else a draining one's)
}

func (p *Pool) load() poolLoad {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := poolLoad{waiting: p.waiters.len(), target: len(p.slots), slotPids: map[int]int{}}
	if e := p.waiters.l.Front(); e != nil {
		l.oldestWait = time.Since(e.Value.(*waiter).since)
	}
	for _, pw := range p.workers {
		if pw.dead() {
			continue
		}
		l.inFlight += pw.inflight
		if pw.state == stateReady {
			l.ready++
			l.slotPids[pw.slot.index] = pw.w.Pid()
		} else {
			l.draining++
			if _, ok := l.slotPids[pw.slot.index]; !ok {
				l.slotPids[pw.slot.index] = pw.w.Pid()
			}
		}
		select {
		case <-pw.w.Unresponsive():
			l.wedged++
		default:
		}
	}
	return l
}
