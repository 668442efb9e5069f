package main

import (
	"encoding/json"
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
