package mlbridge

import (
	"context"
	"sync"
	"sync/atomic"
)

// Migration metrics: where the calls of a pool come from (which Go API, which call mode) and
// how the Python side serves them (which handler kind). They answer "how far along are we?"
// for the two migrations mlbridge supports: legacy → current Go API, and sync → async handlers.

// CallCounts counts finished calls and the ones among them that failed.
type CallCounts struct {
	Calls  uint64 `json:"calls"`
	Errors uint64 `json:"errors"`
}

// CallMode is how Go made a call: Call (blocking), Submit (a Future) or Stream.
type CallMode string

const (
	ModeCall   CallMode = "call"
	ModeSubmit CallMode = "submit"
	ModeStream CallMode = "stream"
)

// indexes into callModes
const (
	modeCall = iota
	modeSubmit
	modeStream
)

var callModes = [...]CallMode{modeCall: ModeCall, modeSubmit: ModeSubmit, modeStream: ModeStream}

// APICurrent is the API name of calls that carry no WithAPI attribution: the current API.
const APICurrent = "current"

type apiKey struct{}

// WithAPI attributes the calls made with ctx to a named Go API surface, counted in
// PoolStats.ByAPI. The deprecated adapters set it ("adapters.PythonPoolV2", ...), so a node can
// report how many calls still go through them; an application can set it per module to
// follow a module-by-module migration.
func WithAPI(ctx context.Context, api string) context.Context {
	return context.WithValue(ctx, apiKey{}, api)
}

func apiOf(ctx context.Context) string {
	if api, ok := ctx.Value(apiKey{}).(string); ok && api != "" {
		return api
	}
	return APICurrent
}

// HandlerStats is the sync→async view of a pool's Python handlers: the bridge's own ops
// (runtime plumbing such as ping or health_check left out), from each worker's latest health
// check (every PoolConfig.HealthInterval, and once when it starts).
type HandlerStats struct {
	// Modes is the kind serving each op now; KindMixed while workers disagree (a switch
	// reached some of them).
	Modes map[string]HandlerKind `json:"modes"`
	// AsyncShare is the share of ops served by async or async_gen implementations, 0..1,
	// each op weighted by the share of workers serving it that way.
	AsyncShare float64 `json:"async_share"`
	// Kinds counts calls and errors per handler kind, summed over the pool's workers since
	// it opened (workers that have gone included, as of their last health check).
	Kinds map[HandlerKind]CallCounts `json:"kinds"`
}

// KindMixed is reported in HandlerStats.Modes for an op whose workers serve it with
// different kinds.
const KindMixed HandlerKind = "mixed"

// workerHandlers is what one worker's health_check reports about its handlers.
type workerHandlers struct {
	Modes map[string]HandlerKind     `msgpack:"modes"`
	Kinds map[HandlerKind]CallCounts `msgpack:"kinds"`
}

// migrationStats holds the pool's migration counters. Per call: an array index and, for the
// API, one sync.Map read — no lock, no allocation once an API has been seen. Each call adds to
// exactly one of [ok, failed], so a reader never sees more errors than calls and the ok series
// exported to OpenTelemetry never goes down.
type migrationStats struct {
	modes [len(callModes)]outcomes
	apis  sync.Map // api name -> *outcomes

	mu      sync.Mutex
	retired map[HandlerKind]CallCounts // kinds counted by workers that have gone
}

// outcomes counts calls that succeeded and calls that failed.
type outcomes [2]atomic.Uint64

func (o *outcomes) add(err error) {
	if err != nil {
		o[1].Add(1)
	} else {
		o[0].Add(1)
	}
}

func (o *outcomes) counts() CallCounts {
	ok, failed := o[0].Load(), o[1].Load()
	return CallCounts{Calls: ok + failed, Errors: failed}
}

func (m *migrationStats) record(mode int, api string, err error) {
	m.modes[mode].add(err)
	v, ok := m.apis.Load(api)
	if !ok {
		v, _ = m.apis.LoadOrStore(api, new(outcomes))
	}
	v.(*outcomes).add(err)
}

func (m *migrationStats) byMode() map[CallMode]CallCounts {
	out := make(map[CallMode]CallCounts, len(callModes))
	for i, mode := range callModes {
		out[mode] = m.modes[i].counts()
	}
	return out
}

func (m *migrationStats) byAPI() map[string]CallCounts {
	out := map[string]CallCounts{}
	m.apis.Range(func(k, v any) bool {
		out[k.(string)] = v.(*outcomes).counts()
		return true
	})
	return out
}

// retire keeps the counts of a worker that is leaving the pool.
func (m *migrationStats) retire(h *workerHandlers) {
	if h == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.retired == nil {
		m.retired = map[HandlerKind]CallCounts{}
	}
	for k, c := range h.Kinds {
		r := m.retired[k]
		r.Calls += c.Calls
		r.Errors += c.Errors
		m.retired[k] = r
	}
}

// handlerStats merges the latest reports of the live workers with the retired counts.
func (m *migrationStats) handlerStats(live []*workerHandlers) HandlerStats {
	hs := HandlerStats{Modes: map[string]HandlerKind{}, Kinds: map[HandlerKind]CallCounts{}}
	m.mu.Lock()
	for k, c := range m.retired {
		hs.Kinds[k] = c
	}
	m.mu.Unlock()
	asyncWorkers := map[string]int{}
	reporting := map[string]int{}
	for _, h := range live {
		for k, c := range h.Kinds {
			t := hs.Kinds[k]
			t.Calls += c.Calls
			t.Errors += c.Errors
			hs.Kinds[k] = t
		}
		for op, kind := range h.Modes {
			reporting[op]++
			if kind == KindAsync || kind == KindAsyncGen {
				asyncWorkers[op]++
			}
			if prev, seen := hs.Modes[op]; !seen {
				hs.Modes[op] = kind
			} else if prev != kind {
				hs.Modes[op] = KindMixed
			}
		}
	}
	var share float64
	for op, n := range reporting {
		share += float64(asyncWorkers[op]) / float64(n)
	}
	if len(reporting) > 0 {
		hs.AsyncShare = share / float64(len(reporting))
	}
	return hs
}
