package mlbridge

import (
	"encoding/json"
	"maps"
	"net/http"
	"time"
)

// NodeStatus is what a running node — a service using mlbridge, or `mlbridge serve` —
// reports about its bridges: each one's PoolStats, migration metrics included.
type NodeStatus struct {
	Time    time.Time            `json:"time"`
	Bridges map[string]PoolStats `json:"bridges"`
}

// A NodeSource contributes named adapters to a node's status: a Registry (its started
// bridges), or any adapter given a name with Named.
type NodeSource interface {
	NodeAdapters() map[string]Adapter
}

// NodeAdapters returns the bridges whose workers are running, by name.
func (r *Registry) NodeAdapters() map[string]Adapter {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]Adapter{}
	for name, e := range r.bridges {
		if e.pool != nil {
			out[name] = e.pool
		}
	}
	return out
}

type named struct {
	name string
	a    Adapter
}

func (n named) NodeAdapters() map[string]Adapter { return map[string]Adapter{n.name: n.a} }

// Named makes one adapter a NodeSource, for adapters outside a Registry (a legacy
// PythonPoolV2's pool: Named("dspy-legacy", pool.Client.Adapter())).
func Named(name string, a Adapter) NodeSource { return named{name, a} }

// Status gathers the sources' statistics; a name given twice keeps the last source's.
func Status(sources ...NodeSource) NodeStatus {
	adapters := map[string]Adapter{}
	for _, s := range sources {
		maps.Copy(adapters, s.NodeAdapters())
	}
	st := NodeStatus{Time: time.Now().UTC(), Bridges: make(map[string]PoolStats, len(adapters))}
	for name, a := range adapters {
		st.Bridges[name] = a.Stats()
	}
	return st
}

// NodeHandler serves Status(sources...) as JSON on GET. Mount it beside a service's other
// admin endpoints (it says what runs, never accepts calls); `mlbridge status --node URL` and
// `mlbridge migrate status --node URL` read it.
func NodeHandler(sources ...NodeSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Status(sources...))
	})
}
