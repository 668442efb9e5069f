package mlnats_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/mlnats"
)

// natsCLI runs the real NATS CLI against e, with a config dir of its own (no user context
// leaks in), and returns its standard output.
func natsCLI(t *testing.T, e *mlnats.Embedded, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testenv.NATSCLI(t), append([]string{"--server", e.URL()}, args...)...)
	cmd.Env = append(cmd.Environ(), "XDG_CONFIG_HOME="+t.TempDir(), "HOME="+t.TempDir(), "NATS_CONTEXT=")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("nats %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// TestNATSCLI: `nats micro ls` and `nats micro info` (natscli, built from its Go module)
// list every node's bridge service with its framework, ops and handler kinds; `nats micro
// stats` counts the calls each node took.
func TestNATSCLI(t *testing.T) {
	e := embedded(t)
	a, b := startNode(t, e), startNode(t, e)

	var ls []struct {
		Name     string            `json:"name"`
		ID       string            `json:"id"`
		Version  string            `json:"version"`
		Metadata map[string]string `json:"metadata"`
	}
	out := natsCLI(t, e, "micro", "ls", "--json")
	if err := json.Unmarshal(out, &ls); err != nil {
		t.Fatalf("nats micro ls --json: %v\n%s", err, out)
	}
	var nodes []string
	for _, s := range ls {
		if s.Name != "mlbridge-echo" {
			continue
		}
		if s.Version != mlnats.ServiceVersion || s.Metadata["framework"] != "echo" || s.Metadata["bridge"] != "echo" {
			t.Fatalf("nats micro ls: %+v", s)
		}
		nodes = append(nodes, s.Metadata["node"])
	}
	slices.Sort(nodes)
	want := []string{a.node.ID(), b.node.ID()}
	slices.Sort(want)
	if !slices.Equal(nodes, want) {
		t.Fatalf("nats micro ls lists nodes %v, want %v\n%s", nodes, want, out)
	}

	// One instance at a time, by the id micro ls gave it.
	for _, inst := range ls {
		if inst.Name != "mlbridge-echo" {
			continue
		}
		var info struct {
			Info struct {
				ID        string            `json:"id"`
				Metadata  map[string]string `json:"metadata"`
				Endpoints []struct {
					Subject    string `json:"subject"`
					QueueGroup string `json:"queue_group"`
				} `json:"endpoints"`
			} `json:"info"`
		}
		out = natsCLI(t, e, "micro", "info", "mlbridge-echo", inst.ID, "--json")
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatalf("nats micro info --json: %v\n%s", err, out)
		}
		s := info.Info
		if s.ID != inst.ID || s.Metadata["node"] != inst.Metadata["node"] {
			t.Fatalf("nats micro info %s: instance %s of node %s", inst.ID, s.ID, s.Metadata["node"])
		}
		var ops map[string]string
		if err := json.Unmarshal([]byte(s.Metadata["ops"]), &ops); err != nil {
			t.Fatalf("ops metadata %q: %v", s.Metadata["ops"], err)
		}
		if ops["count"] != "async_gen" || ops["sync_count"] != "sync_gen" || ops["noop"] != "async" || ops["sync_echo"] != "sync" {
			t.Fatalf("handler kinds in nats micro info: %v", ops)
		}
		var subjects []string
		for _, ep := range s.Endpoints {
			if ep.QueueGroup != "q" {
				t.Fatalf("endpoint %s in queue group %q", ep.Subject, ep.QueueGroup)
			}
			subjects = append(subjects, ep.Subject)
		}
		slices.Sort(subjects)
		if !slices.Equal(subjects, []string{"mlbridge.echo.call", "mlbridge.echo.defs", "mlbridge.echo.stream", "mlbridge.echo.submit"}) {
			t.Fatalf("endpoints %v", subjects)
		}
	}

	r := dial(t, e, mlnats.Options{})
	for range 6 {
		if _, err := r.Call(context.Background(), "noop", nil); err != nil {
			t.Fatal(err)
		}
	}
	var stats []struct {
		ID        string `json:"id"`
		Endpoints []struct {
			Name        string `json:"name"`
			NumRequests int    `json:"num_requests"`
		} `json:"endpoints"`
	}
	out = natsCLI(t, e, "micro", "stats", "mlbridge-echo", "--json")
	if err := json.Unmarshal(out, &stats); err != nil {
		t.Fatalf("nats micro stats --json: %v\n%s", err, out)
	}
	calls := 0
	for _, st := range stats {
		for _, ep := range st.Endpoints {
			if ep.Name == "call" {
				calls += ep.NumRequests
			}
		}
	}
	if len(stats) != 2 || calls != 6 || int64(calls) != a.c.n.Load()+b.c.n.Load() {
		t.Fatalf("nats micro stats: %d instances, %d calls counted, nodes served %d+%d\n%s", len(stats), calls, a.c.n.Load(), b.c.n.Load(), out)
	}
}
