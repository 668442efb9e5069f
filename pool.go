package mlbridge

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
	"github.com/mlbridge/mlbridge/store"
)

// ErrCrashLoop: the pool's workers keep failing to start. While it holds, calls that find no
// ready worker fail fast with it (and the last cause); the pool tries again after a cooldown.
var ErrCrashLoop = errors.New("mlbridge: workers crash in a loop")

// PoolConfig describes a supervised pool of identical workers. Config holds the per-worker
// settings; Config.MaxInFlight is each worker's in-flight limit (default: the capacity the
// bridge declares in its handshake, BaseBridge.capacity, else 64).
type PoolConfig struct {
	Config

	// Size is the number of worker processes (default 2). With autoscaling it is the number
	// started by OpenPool (default MinSize) and must lie within MinSize and MaxSize.
	Size int
	// Autoscaling, on when MinSize or MaxSize is set: the pool grows toward MaxSize while
	// calls queue for a worker (within a second or two of sustained load; new workers fork
	// from the zygote with Preload) and stops a worker that served nothing for ScaleDownIdle
	// (default 30s), never going below MinSize (default 1). MaxSize defaults to the larger of
	// MinSize and Size. The policy is in pool_scale_policy.go; PoolStats.Scaling reports it.
	MinSize       int
	MaxSize       int
	ScaleDownIdle time.Duration
	// QueueSize bounds calls waiting for a free worker; past it calls fail at once with
	// ErrOverloaded (default 1024). Each batched op's queue has the same bound.
	QueueSize int

	// Batching overrides, per op, the batching a bridge declares (@batched in Python): a
	// smaller MaxSize, another MaxWait, or Off. Ops the bridge does not batch are unaffected.
	// See docs/BATCHING.md.
	Batching map[string]BatchPolicy

	// Recycling: a worker is replaced after MaxRequests calls, after MaxAge, when its
	// Python process's RSS exceeds MaxRSS bytes, or when it holds abandoned threads (a sync
	// handler that ignored its deadline). Zero disables each limit.
	MaxRequests uint64
	MaxAge      time.Duration
	MaxRSS      int64
	// HealthInterval is how often workers are checked for recycling (default 2s).
	HealthInterval time.Duration
	// DrainTimeout bounds how long a recycled worker, or Close, waits for in-flight calls
	// (default 30s).
	DrainTimeout time.Duration

	// A worker that had served and died (killed, out of memory, a crashing call) is replaced
	// at once. Failures to start — a worker that died before it was ready, or right after
	// with nothing handed to it — are retried with exponential backoff and jitter, from
	// RestartBackoff (default 100ms) to MaxRestartBackoff (default 10s).
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// CrashLoopThreshold failures to start within CrashLoopWindow (defaults 5 and 1m) open
	// a circuit breaker instead of spinning: calls that find no ready worker fail fast with
	// ErrCrashLoop and the cause, and no worker is started for CrashLoopCooldown (default
	// 5s). Then one start is tried: a worker that becomes ready closes the breaker and the
	// pool heals; a failure doubles the cooldown (up to 5m). Pool.Err reports the open state.
	CrashLoopThreshold int
	CrashLoopWindow    time.Duration
	CrashLoopCooldown  time.Duration

	// Preload starts workers by forking them from one interpreter that imported the bridge
	// once (a zygote), instead of starting a new interpreter for each: N workers are ready in
	// about the time of one, which matters for frameworks that take seconds to import. The
	// bridge module must be safe to fork after import (no threads started at import time).
	Preload bool

	// Store holds resource definitions (default: in memory). Global definitions are applied
	// to every worker before it takes calls.
	Store store.Store

	// CallTimeout is the deadline of a call whose ctx has none (0: none). Streams count it
	// from their start to their end.
	CallTimeout time.Duration

	// Name identifies the pool in metrics (the "bridge" attribute; default: Config.Bridge).
	// A Registry names each pool after its bridge.
	Name string
	// MeterProvider receives the pool's OpenTelemetry instruments (default: the global
	// provider): MetricCallDuration and its siblings, MetricCalls and its siblings
	// (docs/OBSERVABILITY.md). prommetrics.New makes one that Prometheus scrapes.
	MeterProvider metric.MeterProvider
}

func (c PoolConfig) withDefaults() PoolConfig {
	if c.autoscaling() {
		c.MinSize = max(c.MinSize, 1)
		if c.Size <= 0 {
			c.Size = c.MinSize
		}
		if c.MaxSize <= 0 {
			c.MaxSize = max(c.MinSize, c.Size)
		}
	} else {
		if c.Size <= 0 {
			c.Size = 2
		}
		c.MinSize, c.MaxSize = c.Size, c.Size // a fixed pool is one that never scales
	}
	if c.ScaleDownIdle <= 0 {
		c.ScaleDownIdle = 30 * time.Second
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 1024
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.HealthInterval, 2*time.Second)
	def(&c.DrainTimeout, 30*time.Second)
	def(&c.RestartBackoff, 100*time.Millisecond)
	def(&c.MaxRestartBackoff, 10*time.Second)
	def(&c.CrashLoopWindow, time.Minute)
	def(&c.CrashLoopCooldown, 5*time.Second)
	if c.CrashLoopThreshold <= 0 {
		c.CrashLoopThreshold = 5
	}
	if c.Store == nil {
		c.Store = store.NewMemory()
	}
	if c.Name == "" {
		c.Name = c.Bridge
	}
	if c.Logger == nil {
		// The default logger names the pool; a caller's own logger carries what the caller
		// put in it (a Registry's: bridge=<name>), so no record says bridge twice.
		c.Logger = slog.Default().With("bridge", c.Name)
	}
	return c
}

// Pool is N supervised Python workers of one bridge that behave like one reliable service.
// It is safe for concurrent use.
type Pool struct {
	cfg   PoolConfig
	wcfg  worker.Config
	log   *slog.Logger
	store store.Store

	mu      sync.Mutex
	workers []*poolWorker // ready and draining workers
	slots   []*slot       // every slot, by index; the autoscaler adds and retires slots
	scaling scaler        // guarded by mu (pool_scale.go)
	next    int           // rotates the dispatch scan
	waiters waitQueue
	closed  bool
	// beforeShutdownSnapshot runs in Shutdown under mu, just before its snapshot of the
	// workers: a test hook (export_test.go), nil otherwise
	beforeShutdownSnapshot func()
	failErr                error   // the crash-loop breaker's cause while it is open
	breaker                breaker // guarded by mu

	zmu    sync.Mutex
	zygote *worker.Zygote // with Preload: forks the workers; restarted if it dies

	stop      chan struct{} // closed by Close
	stopped   chan struct{} // closed once Close has stopped every worker and the zygote
	slotsWG   sync.WaitGroup
	stats     poolStats
	migration migrationStats
	recent    errorRing            // the latest failed calls, for PoolStats.RecentErrors
	info      atomic.Pointer[Info] // the newest worker's hello
	inst      *instruments         // synchronous OpenTelemetry instruments
	metrics   metric.Registration  // OpenTelemetry callbacks; nil if registration failed
	tracer    *callTracer          // each call's client span (pool_trace.go)

	batchDecl atomic.Pointer[map[string]wire.BatchSpec] // the bridge's batched ops (newest hello)
	batchMu   sync.Mutex
	batchers  map[string]*batcher // by op (and Uses): pool_batch.go
	// pool_batch_idle.go: the counts of dropped batchers by op, the last sweep, the idle
	// period (0: batcherIdleAfter; tests shorten it)
	batchRetired map[string]batchTotals
	batchSwept   time.Time
	batchIdle    time.Duration
}

// OpenPool starts cfg.Size workers concurrently and returns when all completed their
// handshake. ctx bounds the start: when it ends first, the error matches ErrTimeout (or
// ErrCancelled) and ctx's own error, and carries what the workers last wrote to stderr.
// If a worker cannot start at all, the error says why.
func OpenPool(ctx context.Context, cfg PoolConfig) (*Pool, error) {
	if err := cfg.validateSize(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Preload && worker.PreloadOff != "" { // macOS: see internal/worker/preload_darwin.go
		cfg.Logger.Warn("mlbridge: Preload is off on this system", "reason", worker.PreloadOff)
		cfg.Preload = false
	}
	p := &Pool{
		cfg: cfg, wcfg: cfg.workerConfig(), log: cfg.Logger, store: cfg.Store,
		stop: make(chan struct{}), stopped: make(chan struct{}),
		tracer: newCallTracer(cfg.TracerProvider, cfg.Name, captureContent(worker.Env(cfg.EnvAllow, cfg.Env))),
	}
	p.wcfg.Spans = p.tracer // each request's handler span, under its client span
	if err := cfg.withHostFuncs(&p.wcfg); err != nil {
		return nil, err
	}
	p.inst = p.newInstruments()
	if cfg.Preload {
		if _, err := p.currentZygote(); err != nil {
			return nil, err
		}
	}
	first := make(chan error, cfg.Size)
	for i := range cfg.Size {
		s := newSlot(i)
		p.slots = append(p.slots, s)
		p.slotsWG.Add(1)
		go p.runSlot(ctx, s, first)
	}
	for range cfg.Size {
		var err error
		select {
		case err = <-first:
		case <-ctx.Done():
			err = worker.CtxError("opening the pool", ctx.Err())
		}
		if err != nil {
			_ = p.closeNow()
			return nil, startError(err, first)
		}
	}
	go p.monitor()
	if cfg.MinSize < cfg.MaxSize {
		go p.autoscale()
	}
	if reg, err := p.registerMetrics(); err != nil {
		p.log.Warn("mlbridge: OpenTelemetry instruments not registered", "err", err)
	} else {
		p.metrics = reg
	}
	return p, nil
}

// startError is err, the reason OpenPool gives up, with the other starts' failures (after
// closeNow every slot has reported): a start cut short by ctx says what the worker was doing.
func startError(err error, first <-chan error) error {
	errs := []error{err}
	for {
		select {
		case e := <-first:
			if e != nil && !errors.Is(e, ErrClosed) && e.Error() != err.Error() {
				errs = append(errs, e)
			}
		default:
			return errors.Join(errs...)
		}
	}
}

// withCallTimeout applies PoolConfig.CallTimeout to a ctx without a deadline.
func (p *Pool) withCallTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.cfg.CallTimeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithTimeout(ctx, p.cfg.CallTimeout)
		}
	}
	return ctx, func() {}
}

// Call runs op on the least-loaded worker and waits for the result.
func (p *Pool) Call(ctx context.Context, op string, args any, opts ...CallOption) (Result, error) {
	return p.do(ctx, modeCall, op, args, collect(opts))
}

// Submit starts op and returns a Future at once; waiting for a free worker happens in the
// background. ctx governs the call.
func (p *Pool) Submit(ctx context.Context, op string, args any, opts ...CallOption) *Future {
	f := newAsyncFuture()
	ctx, f.cancel = context.WithCancel(ctx)
	o := collect(opts)
	go func() {
		f.complete(p.do(ctx, modeSubmit, op, args, o))
		f.cancel()
	}()
	return f
}

// do is the one call path of the pool, inside the call's client span (when tracing is on).
func (p *Pool) do(ctx context.Context, mode int, op string, args any, o callOptions) (Result, error) {
	ctx, span := p.tracer.start(ctx, p.info.Load(), mode, op)
	res, err := p.attempts(ctx, mode, op, args, o)
	p.tracer.end(span, err)
	return res, err
}

// attempts picks a worker, makes sure it has the resources the call uses, sends, waits, and
// retries once on another worker if the call is idempotent and its worker died.
func (p *Pool) attempts(ctx context.Context, mode int, op string, args any, o callOptions) (Result, error) {
	ctx, cancel := p.withCallTimeout(ctx)
	defer cancel()
	if b := p.batcherFor(op, o); b != nil {
		if res, err := p.batchedCall(ctx, mode, b, args, o); !errors.Is(err, errLargeArgs) {
			return res, err
		}
		// arguments carrying an array for shared memory: an ordinary call (pool_batch_large.go)
	}
	start := time.Now()
	var avoid *poolWorker
	for attempt := 0; ; attempt++ {
		pw, err := p.acquire(ctx, avoid)
		if err != nil {
			p.record(ctx, mode, op, start, err)
			return Result{}, err
		}
		res, sent, err := p.callOn(ctx, pw, op, args, o)
		p.release(pw, err)
		if err != nil && errors.Is(err, ErrWorkerExited) && ctx.Err() == nil {
			// A call that never reached the dead worker is simply placed again; one that
			// did is retried once, and only if the caller said it is idempotent.
			if !sent && attempt < p.cfg.MaxSize+1 {
				avoid = pw
				continue
			}
			if sent && attempt == 0 && o.idempotent {
				p.stats.retries.Add(1)
				p.logCall(ctx, slog.LevelInfo, "mlbridge: worker died during an idempotent call; retrying on another",
					slog.String("op", op), slog.Int("pid", pw.w.Pid()))
				avoid = pw
				continue
			}
		}
		p.logLost(ctx, op, pw, err)
		p.record(ctx, mode, op, start, err)
		return res, err
	}
}

// callOn runs one attempt on pw; sent reports whether the request itself reached the worker.
func (p *Pool) callOn(ctx context.Context, pw *poolWorker, op string, args any, o callOptions) (res Result, sent bool, err error) {
	if len(o.uses) > 0 {
		if err := p.ensure(ctx, pw, o.uses); err != nil {
			return Result{}, false, err
		}
	}
	c, err := pw.w.Send(ctx, op, args, false)
	if err != nil {
		return Result{}, false, err
	}
	res, err = resultOf(ctx, c)
	return res, true, err
}

// Stream runs a generator op on the least-loaded worker; see Bridge.Stream. Streams are
// never retried.
func (p *Pool) Stream(ctx context.Context, op string, args any, opts ...CallOption) iter.Seq2[Result, error] {
	o := collect(opts)
	return func(yield func(Result, error) bool) {
		ctx, span := p.tracer.start(ctx, p.info.Load(), modeStream, op)
		ctx, cancel := p.withCallTimeout(ctx)
		defer cancel()
		start := time.Now()
		pw, err := p.acquire(ctx, nil)
		if err != nil {
			p.record(ctx, modeStream, op, start, err)
			p.tracer.end(span, err)
			yield(Result{}, err)
			return
		}
		var final error
		defer func() {
			p.release(pw, final)
			p.logLost(ctx, op, pw, final)
			p.record(ctx, modeStream, op, start, final)
			p.tracer.end(span, final)
		}()
		if len(o.uses) > 0 {
			if final = p.ensure(ctx, pw, o.uses); final != nil {
				yield(Result{}, final)
				return
			}
		}
		c, err := pw.w.Send(ctx, op, args, true)
		if err != nil {
			final = err
			yield(Result{}, err)
			return
		}
		final = drain(c, yield)
	}
}

// record counts a finished call: per op (latency, also to OpenTelemetry), per call mode and
// per Go API.
func (p *Pool) record(ctx context.Context, mode int, op string, start time.Time, err error) {
	c, d := p.stats.record(op, p.info.Load(), start, err)
	if err != nil {
		p.recent.add(c.op, err)
	}
	p.inst.callDone(ctx, c, d, err)
	p.migration.record(mode, apiOf(ctx), err)
}

// Err is ErrClosed once the pool is closed, and an ErrCrashLoop while its workers keep
// failing to start (it clears when a worker starts again); nil otherwise.
func (p *Pool) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failErr != nil {
		return p.failErr
	}
	if p.closed {
		return ErrClosed
	}
	return nil
}

// Close stops taking calls, lets in-flight calls finish (up to DrainTimeout), and stops
// every worker.
func (p *Pool) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout+time.Minute)
	defer cancel()
	return p.Shutdown(ctx)
}

// Shutdown is Close bounded by ctx. A second Shutdown (or Close) waits, within its own ctx,
// for the first to finish: nothing of the pool runs after any of them returned nil.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		select {
		case <-p.stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.closed = true
	p.waiters.failAll(ErrClosed)
	if p.beforeShutdownSnapshot != nil {
		p.beforeShutdownSnapshot()
	}
	// the snapshot: these workers' exits are counted here (their slots see p.closed when
	// they remove them), the others' by their slots
	workers := append([]*poolWorker(nil), p.workers...)
	recycling := map[*poolWorker]bool{} // their recycle counts their exit
	for _, pw := range workers {
		recycling[pw] = pw.state == stateDraining
		pw.state = stateDraining
	}
	p.mu.Unlock()
	p.batchMu.Lock()
	batchers := slices.Collect(maps.Values(p.batchers))
	p.batchMu.Unlock()
	for _, b := range batchers {
		b.failQueued(ErrClosed)
	}
	close(p.stop)
	if p.metrics != nil {
		_ = p.metrics.Unregister()
	}

	var wg sync.WaitGroup
	for _, pw := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.drainAndStop(ctx, pw)
			if !recycling[pw] {
				p.inst.exited(p.shutdownExit(pw))
			}
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() {
		p.slotsWG.Wait()
		p.zmu.Lock()
		if p.zygote != nil {
			_ = p.zygote.Close()
		}
		p.zmu.Unlock()
		close(done)
		close(p.stopped)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdownExit is why a worker Shutdown stopped exited: shutdown, unless it had died on its
// own before Shutdown asked it to stop (a kill, an OOM, a crashing call just before or while
// Shutdown began, its death error then not ErrClosed): a crash, as its slot would have
// counted it, or a start failure if it died before serving.
func (p *Pool) shutdownExit(pw *poolWorker) exitReason {
	err := pw.w.Err()
	switch {
	case err == nil || errors.Is(err, ErrClosed):
		return exitShutdown
	case p.diedStarting(pw):
		return exitStartFailure
	default:
		p.stats.crashes.Add(1)
		return exitCrash
	}
}

// currentZygote returns the live zygote, starting a new one if there is none or it died.
func (p *Pool) currentZygote() (*worker.Zygote, error) {
	p.zmu.Lock()
	defer p.zmu.Unlock()
	if p.zygote != nil {
		select {
		case <-p.zygote.Done():
		default:
			return p.zygote, nil
		}
	}
	z, err := worker.StartZygote(p.wcfg)
	if err != nil {
		return nil, err
	}
	p.zygote = z
	return z, nil
}

// closeNow stops everything without draining (a failed start).
func (p *Pool) closeNow() error {
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	_ = p.Shutdown(ctx) // ctx is already over: nothing waits for a drain
	p.slotsWG.Wait()
	return nil
}

// Define stores a resource definition. A global definition (framework configuration) is
// applied to every running worker before Define returns, and to every worker started later.
// Other definitions reach a worker the first time a call that Uses them runs there.
//
// A global definition that a worker refuses is taken back: the store keeps what it held
// before, because a definition no worker can build would stop every replacement worker from
// starting. One worker tries it first; the rest, in parallel, only after it succeeded.
func (p *Pool) Define(ctx context.Context, d store.Definition) (store.Definition, error) {
	if err := p.closedErr(); err != nil {
		return d, err // nothing stored: no worker is left to apply it, or to refuse it
	}
	prev, prevErr := p.store.Get(ctx, d.ID)
	d, err := p.store.Put(ctx, d)
	if err != nil || !d.Global {
		return d, err
	}
	start := time.Now()
	p.mu.Lock()
	workers := append([]*poolWorker(nil), p.workers...)
	p.mu.Unlock()
	for len(workers) > 0 {
		err := p.ensure(ctx, workers[0], []string{d.ID})
		if errors.Is(err, ErrWorkerExited) {
			workers = workers[1:] // its replacement applies the definition when it starts
			continue
		}
		if _, refused := errors.AsType[*RemoteError](err); refused {
			p.restore(ctx, d, prev, prevErr == nil)
			return d, fmt.Errorf("worker pid %d refused %s %q, definition not kept: %w", workers[0].w.Pid(), d.Kind, d.ID, err)
		}
		if err != nil {
			return d, fmt.Errorf("worker pid %d: %w", workers[0].w.Pid(), err)
		}
		break
	}
	if len(workers) > 1 {
		var wg sync.WaitGroup
		errs := make([]error, len(workers))
		for i, pw := range workers[1:] {
			wg.Go(func() {
				if err := p.ensure(ctx, pw, []string{d.ID}); err != nil && !errors.Is(err, ErrWorkerExited) {
					errs[i] = fmt.Errorf("worker pid %d: %w", pw.w.Pid(), err)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return d, err
		}
	}
	p.logCall(ctx, slog.LevelInfo, "mlbridge: global definition applied", slog.String("id", d.ID),
		slog.String("kind", d.Kind), slog.Int64("version", int64(d.Version)), slog.Int("workers", len(workers)),
		slog.Duration("took", time.Since(start).Round(time.Millisecond)))
	return d, nil
}

// restore puts back what the store held before refused, a definition a worker refused (or
// removes it). It puts back only over refused itself: a definition written since (by another
// caller, another node) is newer and stays.
func (p *Pool) restore(ctx context.Context, refused, prev store.Definition, existed bool) {
	id := refused.ID
	var err error
	if existed {
		prev.IfVersion = refused.Version
		_, err = p.store.Put(ctx, prev)
	} else {
		err = p.store.Delete(ctx, id)
	}
	if errors.Is(err, store.ErrConflict) {
		p.logCall(ctx, slog.LevelInfo, "mlbridge: a refused definition was replaced before it could be taken back; the newer one stays",
			slog.String("id", id))
		return
	}
	if err != nil {
		p.logCall(ctx, slog.LevelError, "mlbridge: could not take back a refused definition", slog.String("id", id),
			slog.String("err", err.Error()))
	}
}

// Store is the pool's definition store.
func (p *Pool) Store() store.Store { return p.store }
