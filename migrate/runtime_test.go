package migrate_test

import (
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/migrate"
)

func TestRuntimeOfTwoBridges(t *testing.T) {
	c := func(calls, errs uint64) mlbridge.CallCounts { return mlbridge.CallCounts{Calls: calls, Errors: errs} }
	st := mlbridge.NodeStatus{Bridges: map[string]mlbridge.PoolStats{
		"dspy": {
			ByAPI: map[string]mlbridge.CallCounts{"current": c(20, 1), "billing": c(10, 0),
				"adapters.PythonPoolV2": c(60, 3), "adapters.PythonPort": c(10, 0)},
			Handlers: mlbridge.HandlerStats{AsyncShare: 0.25,
				Modes: map[string]mlbridge.HandlerKind{"execute": "async", "describe": "sync", "list_resources": "sync", "time_program": "sync"}},
		},
		"langchain": {
			ByAPI:    map[string]mlbridge.CallCounts{"current": c(100, 2)},
			Handlers: mlbridge.HandlerStats{AsyncShare: 1, Modes: map[string]mlbridge.HandlerKind{"invoke": "async", "stream": "async_gen"}},
		},
		"idle": {},
	}}
	rt := migrate.RuntimeOf("http://node", st)

	d := rt.Bridges["dspy"]
	if d.Paths["legacy"] != c(70, 3) || d.Paths["current"] != c(30, 1) || d.NewAPIShare != 0.3 {
		t.Errorf("dspy paths %v, share %v", d.Paths, d.NewAPIShare)
	}
	if len(d.DeprecatedCalls) != 2 || d.DeprecatedCalls["adapters.PythonPort"] != c(10, 0) {
		t.Errorf("dspy deprecated calls %v", d.DeprecatedCalls)
	}
	// An application's own mark (a module it follows) is current-API traffic, not deprecated.
	if len(d.ModuleCalls) != 1 || d.ModuleCalls["billing"] != c(10, 0) || rt.Total.ModuleCalls["billing"] != c(10, 0) {
		t.Errorf("dspy module calls %v", d.ModuleCalls)
	}
	if l := rt.Bridges["langchain"]; l.NewAPIShare != 1 || len(l.DeprecatedCalls) != 0 || l.Ops != 2 {
		t.Errorf("langchain %+v", l)
	}
	if i := rt.Bridges["idle"]; i.NewAPIShare != 0 || i.Ops != 0 {
		t.Errorf("a bridge without calls: %+v", i)
	}
	// Totals: calls summed; the async share weighted by ops: (0.25×4 + 1×2) / 6.
	if rt.Total.Paths["current"] != c(130, 3) || rt.Total.Paths["legacy"] != c(70, 3) || rt.Total.NewAPIShare != 130.0/200 {
		t.Errorf("total paths %v, share %v", rt.Total.Paths, rt.Total.NewAPIShare)
	}
	if rt.Total.Ops != 6 || rt.Total.AsyncShare != 0.5 {
		t.Errorf("total async share %v over %d ops, want 0.5 over 6", rt.Total.AsyncShare, rt.Total.Ops)
	}
}
