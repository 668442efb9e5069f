package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

func TestServeAndStatus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	cmd := newRootCmd()
	cmd.SetOut(pw)
	cmd.SetErr(pw)
	cmd.SetArgs([]string{"serve", "--workers", "2", "--addr", "127.0.0.1:0", "--python", testenv.Python(t)})
	served := make(chan error, 1)
	go func() { served <- cmd.ExecuteContext(ctx); pw.Close() }()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed nothing: %v", err)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimPrefix(line[strings.Index(line, "http://"):], "http://")
	addr = strings.TrimSpace(addr)

	resp, err := http.Post("http://"+addr+"/v1/call/add", "application/json", strings.NewReader(`{"a": 40, "b": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["result"] != 42.0 {
		t.Fatalf("call: %d %v", resp.StatusCode, body)
	}
	resp, err = http.Post("http://"+addr+"/v1/call/add", "application/json", strings.NewReader(`{"a": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 400 || body["category"] != "invalid_argument" {
		t.Fatalf("bad call: %d %v", resp.StatusCode, body)
	}

	out, err := run(t, "status", "--addr", addr)
	if err != nil || !strings.Contains(out, "healthy — 2/2 ready") || !strings.Contains(out, "add") ||
		!strings.Contains(out, "calls by mode: call 2 (1 failed), stream 0, submit 0") ||
		!strings.Contains(out, "calls by API:  current 2 (1 failed)") || !strings.Contains(out, "% async over ") {
		t.Fatalf("status table:\n%s\n%v", out, err)
	}
	out, err = run(t, "status", "--addr", addr, "--json")
	var st mlbridge.PoolStats
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st.Workers) != 2 || st.Workers[0].Pid == 0 {
		t.Fatalf("status --json: %q %v", out, err)
	}
	if st.Handlers.Modes["lm_wait"] != mlbridge.KindSync || st.Handlers.Modes["echo"] != mlbridge.KindAsync {
		t.Errorf("handler modes in status --json: %+v", st.Handlers.Modes)
	}
	// Calls per kind arrive with the workers' next health check (every 2 s).
	for deadline := time.Now().Add(30 * time.Second); st.Handlers.Kinds[mlbridge.KindSync].Calls != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("add (sync) called twice, kinds say %+v", st.Handlers.Kinds)
		}
		time.Sleep(100 * time.Millisecond)
		out, _ = run(t, "status", "--addr", addr, "--json")
		_ = json.Unmarshal([]byte(out), &st)
	}
	resp, err = http.Get("http://" + addr + "/v1/node")
	if err != nil {
		t.Fatal(err)
	}
	var node mlbridge.NodeStatus
	_ = json.NewDecoder(resp.Body).Decode(&node)
	resp.Body.Close()
	if len(node.Bridges) != 1 || node.Bridges[testenv.EchoBridge].Size != 2 {
		t.Fatalf("/v1/node: %+v", node)
	}

	cancel()
	if err := <-served; err != nil {
		t.Fatalf("serve stopped with %v", err)
	}
	if _, err := run(t, "status", "--addr", addr); err == nil || !strings.Contains(err.Error(), "mlbridge serve") {
		t.Fatalf("status without a node: %v", err)
	}
}
