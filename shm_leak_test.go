//go:build unix

package mlbridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// Nothing of a shared segment outlives its use: after a normal call, an undecoded result, a
// refused call, a cancelled call, a killed worker and a killed host, the host has the same
// descriptors and no mapping of a segment; a surviving worker has the same descriptors and no
// mapping either. The descriptor and mapping counts are the real checks. /dev/shm is counted
// too, but on Linux segments are memfds, which never appear there: that count guards only the
// file-backed segments of other Unixes (macOS has no /dev/shm either, so it reads -1).

// resources is what a leak would show on the host.
type resources struct {
	FDs    int // open descriptors (/proc/self/fd, /dev/fd on macOS)
	Maps   int // mappings of array segments (/proc/self/maps; -1 where there is none)
	DevShm int // entries in /dev/shm (-1 where there is none)
}

func hostResources(t *testing.T) resources {
	t.Helper()
	dir := "/proc/self/fd"
	if _, err := os.Stat(dir); err != nil {
		dir = "/dev/fd"
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := resources{FDs: len(ents) - 1, Maps: -1, DevShm: -1} // less ReadDir's own
	if b, err := os.ReadFile("/proc/self/maps"); err == nil {
		r.Maps = strings.Count(string(b), "mlbridge-array")
	}
	if ents, err := os.ReadDir("/dev/shm"); err == nil {
		r.DevShm = len(ents)
	}
	return r
}

// settled waits (collecting garbage: an undecoded Result unmaps its segments when collected)
// until the host is back to base, and fails with what is left over.
func settled(t *testing.T, base resources, what string) {
	t.Helper()
	var now resources
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		runtime.GC()
		now = hostResources(t)
		if now.FDs <= base.FDs && now.Maps <= max(base.Maps, 0) && now.DevShm <= base.DevShm {
			return
		}
	}
	t.Fatalf("%s: host resources %+v, before %+v", what, now, base)
}

type workerResources struct {
	FDs  int `msgpack:"fds"`
	Maps int `msgpack:"maps"`
}

func TestSharedMemoryNoLeaks(t *testing.T) {
	a, _ := mlbridge.Float64Array(ramp(1 << 19)) // 4 MiB
	args := map[string]any{"a": a}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, b *mlbridge.Bridge)
		dies bool // the worker is killed
	}{
		{"normal call", func(t *testing.T, b *mlbridge.Bridge) {
			out := call[mlbridge.Array](t, b, "echo_array", args)
			if len(out.Data) != len(a.Data) {
				t.Fatalf("%d bytes back", len(out.Data))
			}
		}, false},
		{"result never decoded", func(t *testing.T, b *mlbridge.Bridge) {
			if _, err := b.Call(context.Background(), "new_array", map[string]any{"n": 1 << 19}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"unknown op", func(t *testing.T, b *mlbridge.Bridge) {
			_, err := b.Call(context.Background(), "no_such_op", args)
			if !errors.Is(err, mlbridge.ErrUnknownOp) {
				t.Fatalf("unknown op: %v", err)
			}
		}, false},
		{"bad arguments", func(t *testing.T, b *mlbridge.Bridge) {
			_, err := b.Call(context.Background(), "array_info", map[string]any{"a": a, "bogus": 1})
			if !errors.Is(err, mlbridge.ErrInvalidArgument) {
				t.Fatalf("bad arguments: %v", err)
			}
		}, false},
		{"cancelled while Python holds the input", func(t *testing.T, b *mlbridge.Bridge) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := b.Call(ctx, "sleep_echo", map[string]any{"value": a, "seconds": 0.4})
			if !errors.Is(err, mlbridge.ErrTimeout) {
				t.Fatalf("cancelled call: %v", err)
			}
			time.Sleep(500 * time.Millisecond) // Python is done with it
		}, false},
		{"cancelled before the result came", func(t *testing.T, b *mlbridge.Bridge) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			// Python holds its loop until after it answered, so it reads the cancel too late:
			// the host receives a result (and its segment) for a call it gave up
			_, err := b.Call(ctx, "new_array", map[string]any{"n": 1 << 19, "delay": 0.2, "block": true})
			if !errors.Is(err, mlbridge.ErrTimeout) {
				t.Fatalf("cancelled call: %v", err)
			}
			time.Sleep(400 * time.Millisecond) // the late answer arrived
		}, false},
		{"worker killed during the call", func(t *testing.T, b *mlbridge.Bridge) {
			go func() { time.Sleep(100 * time.Millisecond); b.Kill("test") }()
			_, err := b.Call(context.Background(), "sleep_echo", map[string]any{"value": a, "seconds": 5})
			if !errors.Is(err, mlbridge.ErrWorkerExited) {
				t.Fatalf("killed worker: %v", err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			requireShared(t, b.Info())
			call[mlbridge.Array](t, b, "echo_array", args) // warm: lazily opened files are open now
			before := call[workerResources](t, b, "os_resources", nil)
			base := hostResources(t)
			tc.run(t, b)
			if tc.dies {
				settled(t, base, tc.name)
				return
			}
			// One more round trip: a segment left queued on the channel by the case would be
			// read (and held) while this one's result is looked for.
			call[mlbridge.Array](t, b, "echo_array", args)
			settled(t, base, tc.name)
			after := call[workerResources](t, b, "os_resources", nil)
			if after.FDs > before.FDs || after.Maps > 0 {
				t.Fatalf("worker resources %+v, before %+v", after, before)
			}
		})
	}
}

const shmHostEnv = "MLBRIDGE_TEST_SHM_HOST"

// TestSharedMemoryHostKilled re-runs this test binary as a host that sends a 64 MiB array to a
// worker which holds it, and SIGKILLs that host: the worker dies with it (and with the worker
// its mapping: the check that matters). /dev/shm is checked too, though a memfd never shows there.
func TestSharedMemoryHostKilled(t *testing.T) {
	if os.Getenv(shmHostEnv) != "" {
		shmHost()
		return
	}
	shmBefore := hostResources(t).DevShm
	cmd, line := testenv.HelperHost(t, "TestSharedMemoryHostKilled", shmHostEnv+"=1")
	var rep struct{ Worker, Maps int }
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("helper host said %q: %v", line, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(rep.Worker, syscall.SIGKILL) })
	if rep.Maps == 0 {
		t.Fatalf("the worker did not map the array (maps %d)", rep.Maps)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for syscall.Kill(rep.Worker, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("worker %d still alive 3s after its host was killed", rep.Worker)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after := hostResources(t).DevShm; after > shmBefore {
		t.Fatalf("/dev/shm: %d entries, %d before", after, shmBefore)
	}
}

// shmHost is the helper host: it reports once the worker holds the array, then waits.
func shmHost() {
	b, err := mlbridge.Open(context.Background(), mlbridge.Config{Bridge: testenv.EchoBridge})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper host:", err)
		os.Exit(1)
	}
	a, _ := mlbridge.Float64Array(ramp(1 << 23))
	go func() { _, _ = b.Call(context.Background(), "sleep_echo", map[string]any{"value": a, "seconds": 60}) }()
	for {
		time.Sleep(50 * time.Millisecond)
		var w workerResources
		if w, err = mlbridge.Decode[workerResources](b.Call(context.Background(), "os_resources", nil)); err == nil && w.Maps > 0 {
			fmt.Printf("{\"Worker\": %d, \"Maps\": %d}\n", b.Info().Pid, w.Maps)
			select {}
		}
	}
}
