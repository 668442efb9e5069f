package mlbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/worker"
)

// ErrRequirements: a bridge's declared requirements are not met on this machine.
var ErrRequirements = errors.New("mlbridge: bridge requirements not met")

// Problem is one requirement of a bridge that this machine does not meet, and how to fix it.
type Problem struct {
	Bridge string `json:"bridge"`
	What   string `json:"what"`
	Fix    string `json:"fix"`
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s (%s)", p.Bridge, p.What, p.Fix) }

func problemsError(ps []Problem) error {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = "  - " + p.String()
	}
	return fmt.Errorf("%w:\n%s", ErrRequirements, strings.Join(lines, "\n"))
}

// Check reports what bridge name needs and this machine lacks: environment variables, the
// interpreter, its version, Python packages, the bridge module or script. Nothing starts;
// one short-lived interpreter answers the Python questions.
func (r *Registry) Check(ctx context.Context, name string) ([]Problem, error) {
	r.mu.Lock()
	e, ok := r.bridges[name]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownBridge, name)
	}
	return r.check(ctx, e), nil
}

// probeScript prints the interpreter's version and which of the modules in argv cannot be
// found. find_spec locates a top-level module without importing it.
const probeScript = `import importlib.util, json, sys
missing = []
for name in sys.argv[1:]:
    try:
        if importlib.util.find_spec(name) is None:
            missing.append(name)
    except Exception:
        missing.append(name)
print(json.dumps({"version": list(sys.version_info[:3]), "missing": missing}))`

func (r *Registry) check(ctx context.Context, e *registryEntry) []Problem {
	b := e.cfg
	if b.Remote != nil {
		return nil // nothing runs here; the serving nodes check themselves
	}
	var ps []Problem
	add := func(what, fix string) { ps = append(ps, Problem{Bridge: e.name, What: what, Fix: fix}) }
	for _, v := range b.Env {
		if os.Getenv(v) == "" {
			add("environment variable "+v+" is not set", "export "+v+" before starting the host")
		}
	}
	bridgeModule := ""
	// The runtime comes from the Go module (first on the probe's PYTHONPATH, as on a
	// worker's); msgpack is what the interpreter must bring for it.
	modules := append([]string{"mlbridge_worker", "msgpack"}, b.Packages...)
	if b.Bridge != "" {
		bridgeModule = strings.SplitN(b.Bridge, ":", 2)[0]
		modules = append(modules, bridgeModule)
	}
	pc := r.poolConfig(e)
	if b.Script != "" {
		if _, err := os.Stat(pc.Args[0]); err != nil {
			add("script "+pc.Args[0]+" not found", "give its path relative to the configuration file's directory "+
				"(or, in code, the host's working directory)")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The probe runs as a worker would: same interpreter, dir, environment and PYTHONPATH.
	cmd, err := worker.Command(ctx, pc.workerConfig(), append([]string{"-c", probeScript}, modules...)...)
	switch {
	case errors.Is(err, ErrPythonNotFound):
		add(err.Error(), "install Python 3.11+, or set python: in the configuration or $MLBRIDGE_PYTHON")
		return ps
	case err != nil:
		add(err.Error(), "create it, or fix dir: (relative to the configuration file's directory)")
		return ps
	}
	python := cmd.Path
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		add(fmt.Sprintf("%s does not run: %v %s", python, err, strings.TrimSpace(stderr.String())), "check the interpreter")
		return ps
	}
	var probe struct {
		Version []int    `json:"version"`
		Missing []string `json:"missing"`
	}
	if err := json.Unmarshal(out.Bytes(), &probe); err != nil || len(probe.Version) < 2 {
		add(fmt.Sprintf("%s answered %q", python, out.String()), "check the interpreter")
		return ps
	}
	if b.MinPython != "" {
		minor, _ := strconv.Atoi(strings.TrimPrefix(b.MinPython, "3."))
		if probe.Version[0] < 3 || (probe.Version[0] == 3 && probe.Version[1] < minor) {
			add(fmt.Sprintf("%s is Python %d.%d, the bridge needs %s", python, probe.Version[0], probe.Version[1], b.MinPython),
				"point python: at a newer interpreter")
		}
	}
	for _, m := range probe.Missing {
		if m == bridgeModule {
			add("bridge module "+m+" is not on the worker's sys.path",
				"put the directory that holds it on pythonpath: (Config.PythonPath), or run the workers in it with dir:")
			continue
		}
		if m == "msgpack" {
			add("Python module msgpack, the worker runtime's one dependency, is not installed in "+python,
				"run "+errs.InstallCommand(python, "msgpack"))
			continue
		}
		// One fix for every missing module (doctor prints a shared fix once); module and
		// package names differ (sklearn: scikit-learn), so the fix names no package.
		add("Python module "+m+" is not installed in "+python,
			"install its package into that interpreter (`"+python+" -m pip install <package>`; the packages of the "+
				"framework bridges mlbridge ships: `mlbridge python setup --extras dspy|langchain|sklearn|local`)")
	}
	return ps
}
