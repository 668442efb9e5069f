package testenv

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// staticcheck is the binary Staticcheck returns, found or built once per test process.
var staticcheck tool

// Staticcheck builds honnef.co/go/tools/cmd/staticcheck at the version tools/go.mod pins,
// offline (./scripts/bootstrap downloads it), and returns its path. The binary is kept in the
// user's cache directory under the hash of tools/go.sum, so test processes share one build
// and a new pin builds a new one.
func Staticcheck(t testing.TB) string {
	t.Helper()
	return staticcheck.path(t, "staticcheck", "honnef.co/go/tools/cmd/staticcheck")
}

// tool is a command of the tools/ module, built once per test process.
type tool struct {
	once sync.Once
	bin  string
	err  error
}

func (b *tool) path(t testing.TB, name, pkg string) string {
	t.Helper()
	b.once.Do(func() { b.bin, b.err = buildTool(name, pkg) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// buildTool builds pkg, a tool of the tools/ module, offline, into the user's cache
// directory under the hash of tools/go.sum, and returns the binary's path.
func buildTool(name, pkg string) (string, error) {
	tools := filepath.Join(Root(), "tools")
	sum, err := os.ReadFile(filepath.Join(tools, "go.sum"))
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	hash := sha256.Sum256(sum)
	bin := filepath.Join(cache, "mlbridge", "test-tools", name+"-"+hex.EncodeToString(hash[:8]))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	// Built under a name of its own and renamed: test processes running at once may both build.
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, pkg)
	cmd.Dir = tools
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s in tools/ (run ./scripts/bootstrap): %v\n%s", name, err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// SA1019 runs staticcheck's SA1019 check (deprecated names) on ./... in dir, offline, with
// build tags, and returns the positions it reports, "file:line:col". Any other diagnostic
// (a package that does not load) fails the test.
func SA1019(t testing.TB, dir string, tags ...string) []string {
	t.Helper()
	args := []string{"-checks", "SA1019", "-f", "json"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command(Staticcheck(t), append(args, "./...")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// staticcheck exits 1 when it reports something: not an error here
	if ee := (*exec.ExitError)(nil); err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("staticcheck: %v\n%s%s", err, out, stderr.Bytes())
	}
	var got []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d struct {
			Code     string `json:"code"`
			Message  string `json:"message"`
			Location struct {
				File   string `json:"file"`
				Line   int    `json:"line"`
				Column int    `json:"column"`
			} `json:"location"`
		}
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("staticcheck output: %v: %s", err, sc.Bytes())
		}
		if d.Code != "SA1019" {
			t.Fatalf("staticcheck: %s %s:%d: %s", d.Code, d.Location.File, d.Location.Line, d.Message)
		}
		got = append(got, fmt.Sprintf("%s:%d:%d", d.Location.File, d.Location.Line, d.Location.Column))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if err != nil && len(got) == 0 {
		t.Fatalf("staticcheck exited 1 and reported nothing\n%s", stderr.Bytes())
	}
	return got
}
