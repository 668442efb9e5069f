package main

import (
	"fmt"
	"math"
)

// jsonValue makes a decoded result encodable as JSON, which has no spelling for two things
// Python returns: a dict key that is not a string, written as a string as Python's
// json.dumps writes it ({0: "a"} → {"0": "a"}), and, with spellFloats, NaN and ±Inf, written
// as the strings "NaN", "Infinity" and "-Infinity". `call` spells them (it failed after the
// call succeeded: "json: unsupported value: NaN"); serve's API does not (a string where a
// number was is a different answer: it says it cannot send it).
func jsonValue(v any, spellFloats bool) any {
	switch x := v.(type) {
	case float64:
		if spellFloats {
			return jsonFloat(x, v)
		}
	case float32:
		if spellFloats {
			return jsonFloat(float64(x), v)
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e, spellFloats)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e, spellFloats)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonValue(e, spellFloats)
		}
		return out
	}
	return v
}

func jsonFloat(f float64, v any) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return v
}
