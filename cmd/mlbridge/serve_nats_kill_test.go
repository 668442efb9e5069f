//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/mlnats"
)

// The client's loss detection, set explicitly (these are the defaults): a node that took a
// call and is silent for killLostAfter is lost.
const (
	killHeartbeat = 250 * time.Millisecond
	killLostAfter = time.Second
	// movedBound is the promise: traffic has left a killed node within 2 s.
	movedBound = 2 * time.Second
	// killSlack covers scheduling on a loaded 2-core machine under -race in the per-call bound.
	killSlack = time.Second
	// callDeadline is every call's ctx deadline: a call that reaches it counts as hung.
	callDeadline = 10 * time.Second
)

// TestServeNATSKill9: three `mlbridge serve --nats` node processes on an embedded loopback
// server and a client in this process. Under load (24 callers, half idempotent, 75 ms in
// Python per call) calls spread over the three; then one node process gets SIGKILL. No call
// hangs, every idempotent call succeeds, the non-idempotent ones in flight on the dead node
// fail with ErrNodeLost, the survivors take the traffic within 2 s, the dead node's
// processes (workers, their lifeline guardians, two children a worker started) exit, and a
// fourth node that joins takes calls within 1 s.
func TestServeNATSKill9(t *testing.T) {
	t.Setenv(tokenEnv, "")
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{}) // 127.0.0.1, a free port
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)

	nodes := make([]*nodeProc, 3)
	for i := range nodes {
		nodes[i] = launchNode(t, fmt.Sprintf("node%d", i), e.URL())
	}
	for _, n := range nodes {
		n.waitReady(t)
	}
	owner := map[int]int{} // every process under a node -> the node's index
	for i, n := range nodes {
		for _, pid := range descendants(t, n.pid()) {
			owner[pid] = i
		}
	}

	nc, err := nats.Connect(e.URL(), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	marks := &retryMarks{}
	r, err := mlnats.Dial(ctx, nc, "echo", mlnats.Options{Heartbeat: killHeartbeat, LostAfter: killLostAfter, Logger: slog.New(marks)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })

	// Load: 24 callers until stop, half of them idempotent.
	var calls callLog
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	call := func(idem bool, sleep time.Duration) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		calls.add(callOnce(ctx, r, idem, sleep))
	}
	for c := range 24 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				call(c%2 == 0, 75*time.Millisecond)
			}
		})
	}
	stopLoad := func() {
		close(stop)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(callDeadline + 5*time.Second):
			t.Fatalf("%d calls had not returned %v after the load stopped, past their ctx deadline", inFlight.Load(), callDeadline+5*time.Second)
		}
	}
	defer func() {
		select {
		case <-stop:
		default:
			stopLoad() // a t.Fatal below: callers must not outlive the test
		}
	}()

	// Before the kill: the calls spread over the three nodes.
	waitFor(t, 15*time.Second, "each node to serve 20 calls", func() bool {
		return slices.Min(calls.servedBy(owner, len(nodes), time.Time{})) >= 20
	})
	t.Logf("before the kill, calls served per node: %v", calls.servedBy(owner, len(nodes), time.Time{}))

	// Processes a worker of the node to kill started: only the lifeline guardian's kill of
	// the worker's process group takes them down (Pdeathsig, Linux only, reaches workers).
	spawned := spawnUnder(t, r, nodes[0].pid())

	// Probes in flight at the kill: 12 of each kind, 500 ms each, on nodes NATS picks at
	// random. With the callers' 12 of each kind also in flight, the dead node holds none of
	// a kind with probability (2/3)^24 < 1e-4: the assertions below that calls were lost and
	// retried would fail only then.
	for i := range 24 {
		wg.Go(func() { call(i%2 == 0, 500*time.Millisecond) })
	}
	time.Sleep(200 * time.Millisecond)

	victim := nodes[0]
	victimProcs := descendants(t, victim.pid())
	victimWorkers := calls.pidsOf(owner, 0)
	if len(victimProcs) < 2 || len(victimWorkers) == 0 {
		t.Fatalf("the node to kill runs processes %v, served from workers %v", victimProcs, victimWorkers)
	}
	for _, w := range append(victimWorkers, spawned...) {
		if !slices.Contains(victimProcs, w) {
			t.Fatalf("pid %d (a worker that served calls, or a child one started) is not under the node (%v)", w, victimProcs)
		}
	}
	// The watch below sees them run now: their being gone after the kill means something.
	if alive, err := running(victimProcs); err != nil || len(alive) != len(victimProcs) {
		t.Fatalf("before the kill, %v of the node's processes %v run (%v)", alive, victimProcs, err)
	}
	if err := syscall.Kill(victim.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-victim.exited
	t.Logf("node0 (pid %d) killed with SIGKILL: %v; processes under it: %v (workers %v, started by a worker %v)",
		victim.pid(), victim.cmd.ProcessState, victimProcs, victimWorkers, spawned)

	// Its Python processes exit (watched while the load goes on).
	type orphanWatch struct {
		gone  time.Duration // -1: some still ran 10 s after the kill
		still []int
		err   error
	}
	orphans := make(chan orphanWatch, 1)
	go func() {
		for {
			still, err := running(victimProcs)
			switch {
			case err != nil:
				orphans <- orphanWatch{err: err}
			case len(still) == 0:
				orphans <- orphanWatch{gone: time.Since(killed)}
			case time.Since(killed) > 10*time.Second:
				orphans <- orphanWatch{gone: -1, still: still}
			default:
				time.Sleep(20 * time.Millisecond)
				continue
			}
			return
		}
	}()

	time.Sleep(movedBound + 500*time.Millisecond) // the load goes on past the bound

	// A fourth node joins under load and takes calls within 1 s of being ready.
	joined := launchNode(t, "node3", e.URL())
	joined.waitReady(t)
	for _, pid := range descendants(t, joined.pid()) {
		owner[pid] = 3
	}
	var joinTook time.Duration
	waitFor(t, 10*time.Second, "the joined node to serve a call", func() bool {
		first, ok := calls.firstServed(owner, 3, joined.readyAt)
		joinTook = first.Sub(joined.readyAt)
		return ok
	})
	stopLoad()

	switch o := <-orphans; {
	case o.err != nil:
		t.Error(o.err)
	case o.gone < 0:
		t.Errorf("processes of the killed node still run 10 s after the kill: %v of %v", o.still, victimProcs)
	default:
		d := o.gone
		t.Logf("the killed node's %d processes (workers, guardians, a worker's children) were gone %v after the kill", len(victimProcs), d.Round(time.Millisecond))
		if d > 5*time.Second {
			t.Errorf("the killed node's processes took %v to exit; want under 5 s", d)
		}
	}
	t.Logf("node3 served its first call %v after it was ready (calls returned end to end, 75 ms in Python)", joinTook.Round(time.Millisecond))
	if joinTook > time.Second {
		t.Errorf("the joined node served its first call %v after joining; want within 1 s", joinTook)
	}
	checkKillOutcomes(t, calls.all(), owner, killed)
	if warns := marks.warnings(); len(warns) > 0 {
		t.Logf("client warnings: %q", warns)
	}
}

// checkKillOutcomes checks every call of the run against the kill at killed of node 0.
func checkKillOutcomes(t *testing.T, calls []callOutcome, owner map[int]int, killed time.Time) {
	t.Helper()
	var ok, lost, retried, hung int
	var slowest, lastToDead, lastLost time.Duration
	lastToDead = -time.Hour
	firstAfter := map[int]time.Duration{}
	servedAfter := map[int]int{}
	for _, c := range calls {
		took := c.end.Sub(c.start)
		slowest = max(slowest, took)
		// A call runs at most twice: on the dead node until lostAfter of silence (it had
		// run less than its sleep there), then once on a survivor.
		if bound := 2*c.sleep + killLostAfter + killSlack; took > bound {
			t.Errorf("a call of %v took %v, over its bound %v (idempotent %v, err %v)", c.sleep, took, bound, c.idem, c.err)
		}
		toDead := c.retried // its first attempt was lost
		switch {
		case c.err != nil && (errors.Is(c.err, context.DeadlineExceeded) || errors.Is(c.err, mlbridge.ErrTimeout)):
			hung++
			t.Errorf("a call hung until its deadline: %v", c.err)
		case c.err != nil && c.idem:
			t.Errorf("an idempotent call failed: %v", c.err)
		case c.err != nil && !(errors.Is(c.err, mlnats.ErrNodeLost) && errors.Is(c.err, mlbridge.ErrUnavailable)):
			t.Errorf("a non-idempotent call failed without ErrNodeLost: %v", c.err)
		case c.err != nil:
			lost++
			toDead = true
			lastLost = max(lastLost, c.end.Sub(killed))
		default:
			ok++
			node, known := owner[c.pid]
			switch {
			case !known:
				t.Errorf("a call was served by pid %d, under no node", c.pid)
			case node == 0 && c.start.After(killed):
				t.Errorf("a call started %v after the kill was served by the dead node", c.start.Sub(killed))
			case node != 0 && c.start.After(killed):
				servedAfter[node]++
				if d, seen := firstAfter[node]; !seen || c.end.Sub(killed) < d {
					firstAfter[node] = c.end.Sub(killed)
				}
			}
			if c.retried && node == 0 {
				t.Errorf("a retried call was served by the dead node")
			}
		}
		if c.retried {
			retried++
		}
		if toDead {
			lastToDead = max(lastToDead, c.start.Sub(killed))
		}
	}
	t.Logf("%d calls: %d ok, %d idempotent retried after their node was lost, %d non-idempotent ErrNodeLost, %d hung; slowest %v",
		len(calls), ok, retried, lost, hung, slowest.Round(time.Millisecond))
	t.Logf("after the kill: first call served by node1 %v, node2 %v after it; last call sent to the dead node started %v after it (negative: before); last ErrNodeLost returned %v after it; calls served per node after it: %v",
		firstAfter[1].Round(time.Millisecond), firstAfter[2].Round(time.Millisecond), lastToDead.Round(time.Millisecond), lastLost.Round(time.Millisecond), servedAfter)
	if lost == 0 || retried == 0 {
		t.Errorf("the kill cost %d non-idempotent and %d idempotent calls in flight: it hit none of a kind", lost, retried)
	}
	for _, s := range []int{1, 2} {
		if d, seen := firstAfter[s]; !seen || d > movedBound {
			t.Errorf("node%d served its first call after the kill at %v (served: %v); want within %v", s, d, seen, movedBound)
		}
		if servedAfter[s] < 10 {
			t.Errorf("node%d served %d calls after the kill: traffic did not move", s, servedAfter[s])
		}
	}
	if lastToDead > movedBound || lastLost > movedBound {
		t.Errorf("calls went to the dead node until %v after the kill and failed until %v; want within %v", lastToDead, lastLost, movedBound)
	}
}

// spawnUnder has a worker under the node process root start a subprocess and a
// multiprocessing child (echo's spawn_children), which sleep 30 s: longer than the test
// watches them. Calls go to nodes at random, so it calls until one lands under root; the
// others' children go when their nodes stop (their workers' guardians kill the groups).
func spawnUnder(t *testing.T, r *mlnats.Remote, root int) []int {
	t.Helper()
	for range 40 { // (2/3)^40 < 1e-7 that none lands under root
		ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
		kids, err := mlbridge.Decode[map[string]int](r.Call(ctx, "spawn_children", map[string]any{"seconds": 30}))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if under := descendants(t, root); slices.Contains(under, kids["subprocess"]) && slices.Contains(under, kids["multiprocessing"]) {
			return []int{kids["subprocess"], kids["multiprocessing"]}
		}
	}
	t.Fatalf("40 calls of spawn_children, none served under pid %d", root)
	return nil
}

// nodeProc is an `mlbridge serve --nats` process: the test binary run as main (mainEnv).
type nodeProc struct {
	name    string
	cmd     *exec.Cmd
	stderr  lockedBuffer
	ready   chan struct{} // closed when it printed its NATS line: its node serves
	readyAt time.Time
	exited  chan struct{} // closed once reaped
}

// launchNode starts a node of bridge "echo" with two workers; it is stopped (SIGTERM, then
// SIGKILL) when t ends, and its stderr logged if t failed.
func launchNode(t *testing.T, name, url string) *nodeProc {
	t.Helper()
	n := &nodeProc{name: name, ready: make(chan struct{}), exited: make(chan struct{})}
	n.cmd = exec.Command(os.Args[0], "serve", "--workers", "2", "--addr", "127.0.0.1:0", "--nats", url, "--nats-bridge", "echo",
		"--python", testenv.Python(t))
	n.cmd.Env = append(os.Environ(), mainEnv+"=1")
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stdout, n.cmd.Stderr = w, &n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() {
		_ = n.cmd.Wait()
		close(n.exited)
	}()
	go func() {
		defer out.Close()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), " on NATS at ") {
				n.readyAt = time.Now()
				close(n.ready)
			}
		}
	}()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(30 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", n.name, n.stderr.String())
		}
	})
	return n
}

func (n *nodeProc) pid() int { return n.cmd.Process.Pid }

func (n *nodeProc) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-n.ready:
	case <-n.exited:
		t.Fatalf("%s exited before serving: %v\n%s", n.name, n.cmd.ProcessState, n.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not serving after 60 s\n%s", n.name, n.stderr.String())
	}
}

// callOutcome is one call of the load.
type callOutcome struct {
	idem       bool
	sleep      time.Duration
	start, end time.Time
	pid        int // the worker that served it
	err        error
	retried    bool // the client retried it on another node (its node was lost)
}

// callOnce runs sleep_pid, which sleeps in Python and returns the worker's pid.
func callOnce(ctx context.Context, r *mlnats.Remote, idem bool, sleep time.Duration) callOutcome {
	mark := &callMark{}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, callMarkKey{}, mark), callDeadline)
	defer cancel()
	var opts []mlbridge.CallOption
	if idem {
		opts = append(opts, mlbridge.Idempotent())
	}
	o := callOutcome{idem: idem, sleep: sleep, start: time.Now()}
	o.pid, o.err = mlbridge.Decode[int](r.Call(ctx, "sleep_pid", map[string]any{"seconds": sleep.Seconds()}, opts...))
	o.end = time.Now()
	o.retried = mark.retried.Load()
	return o
}

// callLog collects the outcomes of the load's calls.
type callLog struct {
	mu    sync.Mutex
	calls []callOutcome
}

func (l *callLog) add(o callOutcome) {
	l.mu.Lock()
	l.calls = append(l.calls, o)
	l.mu.Unlock()
}

func (l *callLog) all() []callOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// servedBy counts the successful calls started after since, per node.
func (l *callLog) servedBy(owner map[int]int, nodes int, since time.Time) []int {
	counts := make([]int, nodes)
	for _, c := range l.all() {
		if n, ok := owner[c.pid]; ok && c.err == nil && n < nodes && !c.start.Before(since) {
			counts[n]++
		}
	}
	return counts
}

// pidsOf are the workers of node that served calls.
func (l *callLog) pidsOf(owner map[int]int, node int) []int {
	var pids []int
	for _, c := range l.all() {
		if n, ok := owner[c.pid]; ok && c.err == nil && n == node && !slices.Contains(pids, c.pid) {
			pids = append(pids, c.pid)
		}
	}
	return pids
}

// firstServed is when the first call node served after since returned.
func (l *callLog) firstServed(owner map[int]int, node int, since time.Time) (time.Time, bool) {
	var first time.Time
	for _, c := range l.all() {
		if n, ok := owner[c.pid]; ok && c.err == nil && n == node && !c.end.Before(since) && (first.IsZero() || c.end.Before(first)) {
			first = c.end
		}
	}
	return first, !first.IsZero()
}

// callMark rides in a call's ctx; retryMarks sets it when the client logs a retry of the
// call (Remote logs it with the call's ctx): that call's first node was lost.
type callMark struct{ retried atomic.Bool }

type callMarkKey struct{}

// retryMarks is the client's slog.Handler: it marks retried calls and keeps warnings.
type retryMarks struct {
	mu    sync.Mutex
	warns []string
}

func (*retryMarks) Enabled(context.Context, slog.Level) bool { return true }

func (h *retryMarks) Handle(ctx context.Context, rec slog.Record) error {
	if m, ok := ctx.Value(callMarkKey{}).(*callMark); ok && strings.Contains(rec.Message, "retrying") {
		m.retried.Store(true)
	}
	if rec.Level >= slog.LevelWarn {
		h.mu.Lock()
		h.warns = append(h.warns, rec.Message)
		h.mu.Unlock()
	}
	return nil
}

func (h *retryMarks) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *retryMarks) WithGroup(string) slog.Handler      { return h }

func (h *retryMarks) warnings() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.warns)
}

// lockedBuffer is a node's stderr, written by exec's copying goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor polls cond until it holds, failing t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
