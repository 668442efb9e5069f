package mlbridge_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// A node's status lists the registry's started bridges (not the declared-only ones) and any
// named adapter, with their migration metrics; the handler only reads.
func TestNodeHandler(t *testing.T) {
	ctx := context.Background()
	r := echoRegistry(t, map[string]mlbridge.BridgeConfig{"idle": {Bridge: testenv.EchoBridge, Workers: 1}})
	a, err := r.Adapter(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Call(mlbridge.WithAPI(ctx, "billing"), "echo", nil); err != nil {
		t.Fatal(err)
	}
	extra := openPool(t, func(c *mlbridge.PoolConfig) { c.Size = 1 })
	srv := httptest.NewServer(mlbridge.NodeHandler(r, mlbridge.Named("extra", extra)))
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var st mlbridge.NodeStatus
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if len(st.Bridges) != 2 || st.Bridges["echo"].Size != 2 || st.Bridges["extra"].Size != 1 {
		t.Fatalf("bridges: %v", st.Bridges)
	}
	if got := st.Bridges["echo"].ByAPI["billing"]; got.Calls != 1 {
		t.Errorf("echo's calls by API: %v", st.Bridges["echo"].ByAPI)
	}
	if st.Bridges["echo"].Handlers.Modes["lm_wait"] != mlbridge.KindSync || st.Time.IsZero() {
		t.Errorf("echo's handlers: %+v at %v", st.Bridges["echo"].Handlers, st.Time)
	}

	resp, err = http.Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}
