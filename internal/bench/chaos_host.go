package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HostDeathCase is one host-death load: how the host died, and what of its workers' process
// trees was left.
type HostDeathCase struct {
	Signal    string  `json:"signal"`
	Preload   bool    `json:"preload"`
	Processes int     `json:"processes"`  // workers and the children they started
	CleanupMs float64 `json:"cleanup_ms"` // host killed → the last of them gone (goal <= 2000)
	Leftover  int     `json:"leftover"`   // still running 2 s after the host died (goal 0)
}

// hostDeathBound is the promise: nothing a worker started outlives its host by more.
const hostDeathBound = 2 * time.Second

// hostDeathLoads runs `mlbridge serve` (this executable, or o.HostCommand) as a separate
// host, has each of its workers start a subprocess and a multiprocessing child, kills the
// host and watches those processes, for SIGKILL and SIGTERM, without and with Preload.
func hostDeathLoads(ctx context.Context, o Options, python string) ([]HostDeathCase, error) {
	host := o.HostCommand
	if len(host) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		host = []string{exe}
	}
	var out []HostDeathCase
	for _, preload := range []bool{false, true} {
		for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
			c, err := hostDeath(ctx, host, o, python, sig, preload)
			if err != nil {
				return nil, fmt.Errorf("%s, preload %v: %w", sig, preload, err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

var servingOn = regexp.MustCompile(`serving on (https?://\S+)`)

func hostDeath(ctx context.Context, host []string, o Options, python string, sig syscall.Signal, preload bool) (HostDeathCase, error) {
	c := HostDeathCase{Signal: sig.String(), Preload: preload}
	args := append(append([]string(nil), host[1:]...), "serve", "--addr", "127.0.0.1:0",
		"--workers", strconv.Itoa(max(o.Workers, 2)), "--bridge", o.Bridge, "--python", python)
	if preload {
		args = append(args, "--preload")
	}
	cmd := exec.CommandContext(ctx, host[0], args...)
	cmd.Env = append(os.Environ(), "MLBRIDGE_TOKEN=") // loopback, no token: nothing to leak
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return c, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return c, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base, err := waitServing(stdout)
	if err != nil {
		return c, fmt.Errorf("%w; host stderr: %s", err, tail(stderr.String()))
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	var st struct {
		Workers []struct {
			Pid int `json:"pid"`
		} `json:"workers"`
	}
	if err := httpJSON(ctx, http.MethodGet, base+"/v1/status", nil, &st); err != nil {
		return c, err
	}
	var procs []int
	for _, w := range st.Workers {
		procs = append(procs, w.Pid)
	}
	for range 2 * len(st.Workers) { // ties rotate: every worker gets calls
		var r struct {
			Result map[string]int `json:"result"`
		}
		if err := httpJSON(ctx, http.MethodPost, base+"/v1/call/spawn_children", map[string]any{"seconds": 120}, &r); err != nil {
			return c, err
		}
		for _, pid := range r.Result {
			procs = append(procs, pid)
		}
	}
	c.Processes = len(procs)
	defer func() { // never leave this run's processes behind, whatever was measured
		for _, pid := range procs {
			_ = kill(pid, syscall.SIGKILL)
		}
	}()

	if err := cmd.Process.Signal(sig); err != nil {
		return c, err
	}
	died := time.Now()
	for {
		alive := 0
		for _, pid := range procs {
			if processAlive(pid) {
				alive++
			}
		}
		elapsed := time.Since(died)
		if alive == 0 {
			c.CleanupMs = float64(elapsed.Microseconds()) / 1e3
			return c, nil
		}
		if elapsed > hostDeathBound && c.Leftover == 0 {
			c.Leftover = alive
		}
		if elapsed > 5*hostDeathBound {
			c.CleanupMs = -1 // never: the leftovers are killed by the deferred cleanup
			return c, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitServing reads serve's stdout until it says where it serves.
func waitServing(stdout io.Reader) (string, error) {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := servingOn.FindStringSubmatch(sc.Text()); m != nil {
			return m[1], nil
		}
	}
	return "", errors.New("the host exited before serving")
}

func httpJSON(ctx context.Context, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, tail(string(raw)))
	}
	return json.Unmarshal(raw, out)
}

// processAlive: the process exists and is not a zombie (an exited child not yet reaped by
// the process that inherited it is gone for every purpose here).
func processAlive(pid int) bool {
	if kill(pid, 0) != nil {
		return false
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc (macOS): kill(0) is all we know
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, the state follows the last ')'.
	s := string(raw)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}
