package migrate

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mlbridge/mlbridge"
)

// Runtime is the running half of a migration status: what a node's traffic says, per bridge
// and in total. It is built from a NodeStatus (mlbridge.NodeHandler's answer).
type Runtime struct {
	Node    string                   `json:"node"`
	Time    time.Time                `json:"time"`
	Bridges map[string]BridgeRuntime `json:"bridges"`
	Total   BridgeRuntime            `json:"total"`
}

// BridgeRuntime is one bridge's migration figures.
type BridgeRuntime struct {
	// DeprecatedCalls counts calls per deprecated Go API (adapters.PythonPoolV2, ...).
	DeprecatedCalls map[string]mlbridge.CallCounts `json:"deprecated_calls"`
	// ModuleCalls counts calls an application marked with its own mlbridge.WithAPI names
	// (module by module); they are made through the current API.
	ModuleCalls map[string]mlbridge.CallCounts `json:"module_calls,omitempty"`
	// Paths sums calls and errors per path: "legacy" (every deprecated API) and "current"
	// (unmarked calls and the application's own marks).
	Paths map[string]mlbridge.CallCounts `json:"paths"`
	// NewAPIShare is the share of calls made through the current API, 0..1 (0 without calls).
	NewAPIShare float64 `json:"new_api_share"`
	// AsyncShare is the share of the bridge's Python handlers served async, 0..1; in Total,
	// the mean over bridges weighted by their number of ops.
	AsyncShare float64 `json:"async_share"`
	// Ops is how many handler ops AsyncShare is computed over.
	Ops int `json:"ops"`
	// HandlerModes is the kind serving each op ("mixed" while workers disagree).
	HandlerModes map[string]mlbridge.HandlerKind `json:"handler_modes,omitempty"`
}

// LegacyAPIPrefix starts the WithAPI names of the deprecated API: the legacy adapters mark
// their calls "adapters.PythonPoolV2" and "adapters.PythonPort".
const LegacyAPIPrefix = "adapters."

// RuntimeOf derives the migration figures from a node's status.
func RuntimeOf(node string, st mlbridge.NodeStatus) Runtime {
	rt := Runtime{Node: node, Time: st.Time, Bridges: map[string]BridgeRuntime{}, Total: newBridgeRuntime()}
	var asyncOps float64
	for _, name := range slices.Sorted(maps.Keys(st.Bridges)) {
		ps := st.Bridges[name]
		b := newBridgeRuntime()
		for api, c := range ps.ByAPI {
			path := "current"
			switch {
			case strings.HasPrefix(api, LegacyAPIPrefix):
				path = "legacy"
				b.DeprecatedCalls[api] = c
				rt.Total.DeprecatedCalls[api] = add(rt.Total.DeprecatedCalls[api], c)
			case api != mlbridge.APICurrent:
				b.ModuleCalls[api] = c
				rt.Total.ModuleCalls[api] = add(rt.Total.ModuleCalls[api], c)
			}
			b.Paths[path] = add(b.Paths[path], c)
			rt.Total.Paths[path] = add(rt.Total.Paths[path], c)
		}
		b.NewAPIShare = share(b.Paths)
		b.AsyncShare, b.Ops, b.HandlerModes = ps.Handlers.AsyncShare, len(ps.Handlers.Modes), ps.Handlers.Modes
		asyncOps += b.AsyncShare * float64(b.Ops)
		rt.Total.Ops += b.Ops
		rt.Bridges[name] = b
	}
	rt.Total.NewAPIShare = share(rt.Total.Paths)
	if rt.Total.Ops > 0 {
		rt.Total.AsyncShare = asyncOps / float64(rt.Total.Ops)
	}
	return rt
}

func newBridgeRuntime() BridgeRuntime {
	return BridgeRuntime{
		DeprecatedCalls: map[string]mlbridge.CallCounts{},
		ModuleCalls:     map[string]mlbridge.CallCounts{},
		Paths:           map[string]mlbridge.CallCounts{"legacy": {}, "current": {}},
	}
}

func add(a, b mlbridge.CallCounts) mlbridge.CallCounts {
	return mlbridge.CallCounts{Calls: a.Calls + b.Calls, Errors: a.Errors + b.Errors}
}

func share(paths map[string]mlbridge.CallCounts) float64 {
	total := paths["legacy"].Calls + paths["current"].Calls
	if total == 0 {
		return 0
	}
	return float64(paths["current"].Calls) / float64(total)
}
