package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
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
			key := jsonKey(k)
			if _, dup := out[key]; dup {
				// {1: "a", "1": "b"}: one would silently replace the other
				return unencodable{fmt.Errorf("two keys of one dict are both %q in JSON", key)}
			}
			out[key] = jsonValue(e, spellFloats)
		}
		return out
	}
	return v
}

// jsonKey is a dict key as Python's json.dumps writes it: None → "null", True → "true",
// 1.0 → "1.0", 2 → "2".
func jsonKey(k any) string {
	switch x := k.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return pyFloat(x)
	case float32:
		return pyFloat(float64(x))
	}
	return fmt.Sprint(k)
}

func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") { // whole: Python writes 1.0, not 1
		s += ".0"
	}
	return s
}

// unencodable stands for a value JSON cannot carry: encoding it fails with err.
type unencodable struct{ err error }

func (u unencodable) MarshalJSON() ([]byte, error) { return nil, u.err }

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
