package mlbridge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// myBridge is a bridge module of the application's own, outside the mlbridge package.
const myBridge = `from mlbridge_worker import BaseBridge, handler


class MyBridge(BaseBridge):
    def _initialize_framework(self) -> None:
        pass

    @handler
    def shout(self, text: str) -> str:
        return text.upper() + "!"
`

// writeBridgeModule writes lib/mybridge.py under dir.
func writeBridgeModule(t *testing.T, dir string) {
	t.Helper()
	lib := filepath.Join(dir, "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lib, "mybridge.py"), []byte(myBridge), 0o644); err != nil {
		t.Fatal(err)
	}
}

func callShout(t *testing.T, call func(context.Context, string, any) (mlbridge.Result, error)) {
	t.Helper()
	got, err := mlbridge.Decode[string](call(context.Background(), "shout", map[string]any{"text": "hi"}))
	if err != nil || got != "HI!" {
		t.Fatalf("shout: %q %v", got, err)
	}
}

// A relative pythonpath in a YAML file is read against the file's directory (not the host's
// working directory): the registry's workers — forked from a preloaded zygote — import the
// application's own bridge module from there, and Check finds it there too.
func TestRegistryYAMLPythonPathRealWorker(t *testing.T) {
	t.Setenv("MLBRIDGE_PYTHON", testenv.Python(t))
	dir := t.TempDir()
	writeBridgeModule(t, dir)
	yaml := "bridges:\n  mine:\n    bridge: mybridge:MyBridge\n    pythonpath: [lib]\n    workers: 2\n"
	path := filepath.Join(dir, "mlbridge.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := mlbridge.OpenRegistry(path, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if p, err := r.Check(ctx, "mine"); err != nil || len(p) != 0 {
		t.Fatalf("check: %v %v", p, err)
	}
	a, err := r.Adapter(ctx, "mine")
	if err != nil {
		t.Fatal(err)
	}
	callShout(t, func(ctx context.Context, op string, args any) (mlbridge.Result, error) { return a.Call(ctx, op, args) })
}

// Config.PythonPath through mlbridge.Open: a relative entry is read against the host's
// working directory, not against Dir (where the worker runs).
func TestOpenPythonPathRelativeToHost(t *testing.T) {
	t.Setenv("MLBRIDGE_PYTHON", testenv.Python(t))
	dir := t.TempDir()
	writeBridgeModule(t, dir)
	t.Chdir(dir)
	b, err := mlbridge.Open(context.Background(), mlbridge.Config{
		Bridge: "mybridge:MyBridge", PythonPath: []string{"lib"}, Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	callShout(t, b.Call)
}

// A bridge module the worker cannot import says where Python looked and what to set; Check
// says so before anything starts.
func TestRegistryMissingBridgeModuleHint(t *testing.T) {
	t.Setenv("MLBRIDGE_PYTHON", testenv.Python(t))
	_, err := mlbridge.Open(context.Background(), mlbridge.Config{Bridge: "mybridge_not_here:MyBridge"})
	if err == nil {
		t.Fatal("a missing bridge module started")
	}
	for _, want := range []string{"No module named 'mybridge_not_here'", "sys.path", "Config.PythonPath", "pythonpath:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	r, err := mlbridge.NewRegistry(mlbridge.RegistryConfig{Bridges: map[string]mlbridge.BridgeConfig{
		"mine": {Bridge: "mybridge_not_here:MyBridge", Mode: "process"},
	}}, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	problems, err := r.Check(context.Background(), "mine")
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0].Fix, "pythonpath:") {
		t.Fatalf("check: %v %v", problems, err)
	}
}

// A Dir that does not exist is reported as such (an invalid configuration), not as a missing
// interpreter, by Open, by a registry's start and by Check.
func TestRegistryMissingDir(t *testing.T) {
	t.Setenv("MLBRIDGE_PYTHON", testenv.Python(t))
	missing := filepath.Join(t.TempDir(), "gone")
	_, err := mlbridge.Open(context.Background(), mlbridge.Config{Bridge: testenv.EchoBridge, Dir: missing})
	if !errors.Is(err, mlbridge.ErrInvalidConfiguration) || errors.Is(err, mlbridge.ErrPythonNotFound) ||
		!strings.Contains(err.Error(), "dir \""+missing+"\" does not exist") {
		t.Fatalf("open: %v", err)
	}
	r, err := mlbridge.NewRegistry(mlbridge.RegistryConfig{Bridges: map[string]mlbridge.BridgeConfig{
		"echo": {Bridge: testenv.EchoBridge, Dir: missing, Mode: "process"},
	}}, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Adapter(context.Background(), "echo"); !errors.Is(err, mlbridge.ErrRequirements) ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("adapter: %v", err)
	}
}

// env_values set variables in the workers; env_allow passes host variables through by
// name or prefix; nothing else of the host's environment reaches them.
func TestRegistryEnvValuesReachWorker(t *testing.T) {
	t.Setenv("MLBRIDGE_PYTHON", testenv.Python(t))
	t.Setenv("MLBT_ALLOWED_ONE", "yes")
	t.Setenv("MLBT_SECRET", "no")
	cfg, err := mlbridge.ParseRegistryConfig([]byte("bridges:\n  echo:\n    bridge: " + testenv.EchoBridge +
		"\n    mode: process\n    env_allow: [MLBT_ALLOWED_*]\n    env_values: {MLBT_VALUE: \"a=b c\", MLBT_FLAG: false}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := mlbridge.NewRegistry(cfg, mlbridge.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, err := r.Adapter(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := mlbridge.Decode[map[string]string](a.Call(context.Background(), "getenv",
		map[string]any{"names": []string{"MLBT_VALUE", "MLBT_FLAG", "MLBT_ALLOWED_ONE", "MLBT_SECRET"}}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"MLBT_VALUE": "a=b c", "MLBT_FLAG": "false", "MLBT_ALLOWED_ONE": "yes"}
	if len(got) != len(want) {
		t.Fatalf("worker env %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
