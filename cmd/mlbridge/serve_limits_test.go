package main

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestServeDeepRequestFailsAlone: one HTTP request whose JSON nests past the protocol's
// depth limit used to kill the worker, failing every call in flight on it with an empty
// message. It is now a 400 for that request alone.
func TestServeDeepRequestFailsAlone(t *testing.T) {
	t.Setenv(tokenEnv, "")
	addr, stop := startServe(t, "--workers", "1", "--addr", "127.0.0.1:0")
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve stopped with %v", err)
		}
	}()
	post := func(op, body string) (int, map[string]any) {
		resp, err := http.Post("http://"+addr+"/v1/call/"+op, "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	pid := func() any {
		code, out := post("pid", "")
		if code != 200 {
			t.Fatalf("pid: %d %v", code, out)
		}
		return out["result"]
	}
	before := pid()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // in flight on the same worker while the deep request is refused
		defer wg.Done()
		if code, out := post("sleep_echo", `{"value": "slow", "seconds": 0.5}`); code != 200 || out["result"] != "slow" {
			t.Errorf("the call in flight: %d %v", code, out)
		}
	}()
	deep := `{"value": ` + strings.Repeat("[", 1100) + "1" + strings.Repeat("]", 1100) + "}"
	code, out := post("echo", deep)
	msg, _ := out["error"].(string)
	if code != http.StatusBadRequest || !strings.Contains(msg, "invalid argument") || !strings.Contains(msg, "256") {
		t.Fatalf("deep request: %d %v", code, out)
	}
	wg.Wait()
	if after := pid(); after != before {
		t.Fatalf("the worker was replaced: pid %v, was %v", after, before)
	}
}

// A result JSON cannot carry (here +Inf: array_info sums two 1e308s) was a 200 with an empty
// body, the status written before the encoding failed. It is now a 500 that says why, with
// category serialization.
func TestServeAnswerJSONCannotCarry(t *testing.T) {
	t.Setenv(tokenEnv, "")
	addr, stop := startServe(t, "--workers", "1", "--addr", "127.0.0.1:0")
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve stopped with %v", err)
		}
	}()
	for _, c := range []struct{ op, body, inError string }{
		{"array_info", `{"a": [1e308, 1e308]}`, "unsupported value: +Inf"},
		{"echo", `{"value": {"k": 1}}`, ""}, // control: a plain map is fine
		{"labels", `{"n": 2}`, ""},          // int keys: strings, as Python's json.dumps writes them
		{"labels", `{"keys": "float"}`, ""}, // 0.0 → "0.0", as json.dumps
		{"labels", `{"keys": "none"}`, ""},  // None → "null", as json.dumps
		{"labels", `{"keys": "clash"}`, `two keys of one dict are both "0"`},
	} {
		code, out := postJSON(t, addr, c.op, c.body)
		if c.inError == "" {
			if code != http.StatusOK {
				t.Fatalf("%s: %d %v", c.op, code, out)
			}
			want := map[string]map[string]any{
				`{"n": 2}`:          {"0": "label 0", "1": "label 1"},
				`{"keys": "float"}`: {"0.0": "label 0", "1.0": "label 1"},
				`{"keys": "none"}`:  {"null": "label"},
			}[c.body]
			if res, _ := out["result"].(map[string]any); c.op == "labels" && !maps.Equal(res, want) {
				t.Fatalf("labels %s: %v, want %v", c.body, out, want)
			}
			continue
		}
		msg, _ := out["error"].(string)
		if code != http.StatusInternalServerError || out["category"] != "serialization" || !strings.Contains(msg, c.inError) {
			t.Fatalf("%s %s: %d %v, want 500 serialization with %q", c.op, c.body, code, out, c.inError)
		}
	}
}

// Malformed bodies on POST /v1/call/{op} are 400s naming the problem, not read partly: data
// after the object was ignored ({"a": 1}{"a": 2} called with a=1), a number out of float64's
// range became +Inf, and an integer past 64 bits a rounded float.
func TestServeCallBodyIsOneObjectOfExactNumbers(t *testing.T) {
	t.Setenv(tokenEnv, "")
	addr, stop := startServe(t, "--workers", "1", "--addr", "127.0.0.1:0")
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve stopped with %v", err)
		}
	}()
	for _, c := range []struct{ body, inError string }{
		{`{"value": 1}{"value": 2}`, "nothing after it"},
		{`{"value": 1} trailing`, "nothing after it"},
		{`{"value": 1e400}`, "out of float64's range"},
		{`{"value": 36893488147419103232}`, "does not fit in 64 bits"},
		{`{"value": [1, -1e999]}`, "out of float64's range"},
	} {
		code, out := postJSON(t, addr, "echo", c.body)
		msg, _ := out["error"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, c.inError) {
			t.Errorf("%s: %d %v, want 400 with %q", c.body, code, out, c.inError)
		}
	}
	// what is right stays right: one object with trailing whitespace, and uint64's top range
	// as an integer (a float would come back as 1.8446744073709552e+19)
	for body, want := range map[string]string{
		`{"value": 18446744073709551615}` + "\n ": `{"result":18446744073709551615}`,
		`{"value": -3}`:    `{"result":-3}`,
		`{"value": 2.5e3}`: `{"result":2500}`,
	} {
		resp, err := http.Post("http://"+addr+"/v1/call/echo", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(got)) != want {
			t.Errorf("%q: %d %s, want %s", body, resp.StatusCode, got, want)
		}
	}
}

func postJSON(t *testing.T, addr, op, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/v1/call/"+op, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
