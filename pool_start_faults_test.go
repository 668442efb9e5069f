package mlbridge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// childrenOf lists the live processes whose parent is pid (Linux: /proc).
func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && processAlive(child) {
			out = append(out, child)
		}
	}
	return out
}

// TestPreloadedPoolWhoseBridgeImportHangs: with Preload, a bridge whose import never returns
// leaves the zygote unable to fork. OpenPool fails as it does without Preload: ErrHandshake
// once HandshakeTimeout has passed, and the zygote is gone. The zygote's fork used to be
// awaited 30 s per worker, one worker after the other, whatever the handshake timeout and
// the caller's ctx said: a pool of 2 took a minute to fail, with ErrTimeout.
func TestPreloadedPoolWhoseBridgeImportHangs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hangs_at_import.py"), []byte("import time\ntime.sleep(3600)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := len(childrenOf(os.Getpid()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{
			Bridge: "hangs_at_import:Bridge", PythonPath: []string{dir}, Python: testenv.Python(t),
			Logger: quietLogger(t), HandshakeTimeout: 2 * time.Second,
		},
		Size: 2, Preload: true,
	})
	if err == nil {
		p.Close()
		t.Fatal("the pool opened")
	}
	if !errors.Is(err, mlbridge.ErrHandshake) || errors.Is(err, mlbridge.ErrTimeout) {
		t.Fatalf("open: %v", err)
	}
	for i := 0; len(childrenOf(os.Getpid())) > before; i++ {
		if i == 500 {
			t.Fatalf("left running after the failed open: %v", childrenOf(os.Getpid()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInterpreterThatExitsAtOnce: a configured interpreter that ends as soon as it starts (a
// pyenv shim whose version is not installed, a wrapper script that fails) is a handshake
// failure that carries its exit code and stderr. It used to be an untyped "start the lifeline
// guardian: operation not permitted": the guardian could not join a process group that was
// already gone, and that hid why the interpreter had ended.
func TestInterpreterThatExitsAtOnce(t *testing.T) {
	script := filepath.Join(t.TempDir(), "python")
	body := "#!/bin/sh\necho \"shim: version 3.99 is not installed\" >&2\nexit 127\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	for range 5 { // the guardian races the exit: each start must end the same way
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		b, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: testenv.EchoBridge, Python: script, Logger: quietLogger(t)})
		cancel()
		if err == nil {
			b.Close()
			t.Fatal("opened")
		}
		var exit *mlbridge.ExitError
		if !errors.Is(err, mlbridge.ErrHandshake) || !errors.As(err, &exit) {
			t.Fatalf("open: %v", err)
		}
		if exit.ExitCode != 127 || !strings.Contains(strings.Join(exit.Stderr, "\n"), "not installed") {
			t.Fatalf("exit error %+v", exit)
		}
	}
}

// TestPreloadedPoolWhoseInterpreterExitsAtOnce: the same with Preload: the zygote ends at once,
// and opening the pool is ErrHandshake with its exit code and stderr, not an untyped
// "zygote spawn: sendmsg: broken pipe".
func TestPreloadedPoolWhoseInterpreterExitsAtOnce(t *testing.T) {
	script := filepath.Join(t.TempDir(), "python")
	body := "#!/bin/sh\necho \"shim: version 3.99 is not installed\" >&2\nexit 127\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: testenv.EchoBridge, Python: script, Logger: quietLogger(t)},
		Size:   2, Preload: true,
	})
	if err == nil {
		p.Close()
		t.Fatal("opened")
	}
	var exit *mlbridge.ExitError
	if !errors.Is(err, mlbridge.ErrHandshake) || !errors.As(err, &exit) {
		t.Fatalf("open: %v", err)
	}
	if exit.ExitCode != 127 || !strings.Contains(strings.Join(exit.Stderr, "\n"), "not installed") {
		t.Fatalf("exit error %+v", exit)
	}
}
