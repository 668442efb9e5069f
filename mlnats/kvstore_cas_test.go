package mlnats_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/mlnats"
	"github.com/mlbridge/mlbridge/store"
)

// kvStore opens bucket on a connection of its own, as each node would.
func kvStore(t *testing.T, e *mlnats.Embedded, bucket string) *mlnats.KVStore {
	t.Helper()
	js, err := jetstream.New(connect(t, e))
	if err != nil {
		t.Fatal(err)
	}
	s, err := mlnats.OpenKVStore(context.Background(), js, bucket)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func count(d store.Definition) int64 {
	n, _ := d.Spec["n"].(int64)
	if v, ok := d.Spec["n"].(int8); ok { // msgpack keeps small numbers small
		n = int64(v)
	}
	return n
}

// TestKVStoreIfVersion: an update at the revision read is a kv.Update, checked by the
// server: two writers on two connections that read the same revision race, exactly one wins
// and the other gets store.ErrConflict; writers that reread and retry on the conflict lose
// no update.
func TestKVStoreIfVersion(t *testing.T) {
	e := embedded(t)
	a, b := kvStore(t, e, "defs"), kvStore(t, e, "defs")
	ctx := context.Background()
	if _, err := a.Put(ctx, store.Definition{ID: "p", Kind: "program", IfVersion: 1}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("IfVersion on a key never written: %v, want ErrConflict", err)
	}
	read, err := a.Put(ctx, store.Definition{ID: "p", Kind: "program", Spec: map[string]any{"writer": "none"}})
	if err != nil {
		t.Fatal(err)
	}

	// Two writers, each on its own connection, update what they read at one revision.
	for round := range 5 {
		start := make(chan struct{})
		var errs [2]error
		var wg sync.WaitGroup
		for i, s := range []*mlnats.KVStore{a, b} {
			wg.Go(func() {
				<-start
				_, errs[i] = s.Put(ctx, store.Definition{ID: "p", Kind: "program", Spec: map[string]any{"writer": string(rune('a' + i))}, IfVersion: read.Version})
			})
		}
		close(start)
		wg.Wait()
		var winner string
		for i, err := range errs {
			switch {
			case err == nil && winner == "":
				winner = string(rune('a' + i))
			case errors.Is(err, store.ErrConflict):
			default:
				t.Fatalf("round %d: %v", round, errs)
			}
		}
		got, err := b.Get(ctx, "p")
		if winner == "" || err != nil || got.Spec["writer"] != winner || got.Version <= read.Version {
			t.Fatalf("round %d: errors %v, stored %+v %v", round, errs, got, err)
		}
		t.Logf("round %d: writer %s won at version %d; the other: %v", round, winner, got.Version, errs)
		read = got
	}

	// A delete is a revision: an update of the revision before it is a conflict.
	if err := a.Delete(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, store.Definition{ID: "p", Kind: "program", IfVersion: read.Version}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("IfVersion after a delete: %v, want ErrConflict", err)
	}
	if _, err := b.Put(ctx, store.Definition{ID: "p", IfAbsent: true, IfVersion: read.Version}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("IfAbsent with IfVersion: %v, want ErrConflict", err)
	}

	// Read, add one, write at the revision read, reread on a conflict: no increment is lost.
	if _, err := a.Put(ctx, store.Definition{ID: "count", Kind: "counter", Spec: map[string]any{"n": int64(0)}}); err != nil {
		t.Fatal(err)
	}
	const each = 10
	var conflicts atomic.Int32
	var wg sync.WaitGroup
	for _, s := range []*mlnats.KVStore{a, b, a, b} {
		wg.Go(func() {
			for done := 0; done < each; {
				d, err := s.Get(ctx, "count")
				if err != nil {
					t.Error(err)
					return
				}
				runtime.Gosched()
				_, err = s.Put(ctx, store.Definition{ID: "count", Kind: "counter", Spec: map[string]any{"n": count(d) + 1}, IfVersion: d.Version})
				switch {
				case err == nil:
					done++
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, err := a.Get(ctx, "count"); err != nil || count(got) != 4*each {
		t.Fatalf("counter %v after %d increments (%v)", got.Spec["n"], 4*each, err)
	}
	t.Logf("%d increments by 4 writers on two connections, %d conflicts retried", 4*each, conflicts.Load())
}

// TestIfVersionOverRemote: a Remote's Create carries IfVersion to the node's store, and the
// conflict comes back as store.ErrConflict.
func TestIfVersionOverRemote(t *testing.T) {
	e := embedded(t)
	s := kvStore(t, e, "defs")
	startNode(t, e, func(c *mlbridge.PoolConfig) { c.Store = s })
	r := dial(t, e, mlnats.Options{})
	ctx := context.Background()
	d, err := r.Create(ctx, store.Definition{ID: "g", Kind: "greeting", Spec: map[string]any{"prefix": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := r.Create(ctx, store.Definition{ID: "g", Kind: "greeting", Spec: map[string]any{"prefix": "hey"}, IfVersion: d.Version})
	if err != nil || d2.Version <= d.Version {
		t.Fatalf("update at the version read: %+v %v", d2, err)
	}
	if _, err := r.Create(ctx, store.Definition{ID: "g", Kind: "greeting", Spec: map[string]any{"prefix": "yo"}, IfVersion: d.Version}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update at a stale version over the remote: %v, want store.ErrConflict", err)
	}
	if v, err := mlbridge.Decode[string](r.Execute(ctx, "g", map[string]any{"name": "Bo"})); err != nil || v != "hey Bo" {
		t.Fatalf("after the refused update: %q %v", v, err)
	}
}

// TestChosenProgramIDOneWinner: two clients, each through its own node, both on one KV
// bucket, create a dspy program with the same new id at the same instant: the early "is it
// free" read lets both through, and kv.Create lets exactly one write — the other gets
// ErrInvalidArgument ("already in use"), never a silent overwrite. Ten ids, one race each.
func TestChosenProgramIDOneWinner(t *testing.T) {
	e := embedded(t)
	for range 2 {
		s := kvStore(t, e, "defs")
		startNode(t, e, func(c *mlbridge.PoolConfig) { c.Bridge, c.Store = dspy.Bridge, s })
	}
	clients := []*dspy.Client{dspy.New(dial(t, e, mlnats.Options{})), dspy.New(dial(t, e, mlnats.Options{}))}
	ctx := context.Background()
	for i := range 10 {
		id := "chosen-" + string(rune('0'+i))
		start := make(chan struct{})
		var errs [2]error
		var wg sync.WaitGroup
		for j, c := range clients {
			wg.Go(func() {
				<-start
				_, errs[j] = c.CreateProgram(ctx, "question -> answer", dspy.WithID(id), dspy.WithInstructions(string(rune('a'+j))))
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, mlbridge.ErrInvalidArgument):
				t.Fatalf("%s: %v", id, errs)
			}
		}
		if wins != 1 {
			t.Fatalf("%s: %d creators succeeded (%v), want exactly 1", id, wins, errs)
		}
	}
	ids, err := clients[0].ListPrograms(ctx)
	if err != nil || len(ids) != 10 || !slices.IsSorted(ids) {
		t.Fatalf("programs: %v %v", ids, err)
	}
}

// TestIfAbsentThroughTwoNodes: with no early check in front of it, eight clients creating
// one id at once through two nodes on one bucket: exactly one succeeds, seven get
// store.ErrExists across the wire.
func TestIfAbsentThroughTwoNodes(t *testing.T) {
	e := embedded(t)
	for range 2 {
		s := kvStore(t, e, "defs")
		startNode(t, e, func(c *mlbridge.PoolConfig) { c.Store = s })
	}
	var remotes []*mlnats.Remote
	for range 8 {
		remotes = append(remotes, dial(t, e, mlnats.Options{}))
	}
	ctx := context.Background()
	start := make(chan struct{})
	var wins, exists atomic.Int32
	var wg sync.WaitGroup
	for i, r := range remotes {
		wg.Go(func() {
			<-start
			_, err := r.Create(ctx, store.Definition{ID: "g", Kind: "greeting", Spec: map[string]any{"prefix": string(rune('a' + i))}, IfAbsent: true})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrExists):
				exists.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || exists.Load() != 7 {
		t.Fatalf("%d creators succeeded, %d got ErrExists; want 1 and 7", wins.Load(), exists.Load())
	}
}

// TestKVStoreDeleteRacingPut: a Delete removes only the revision it read, so a Put between
// its read and its delete wins, and the Delete says so with store.ErrConflict — never an
// untyped error. A writer and a deleter race on one key until the conflict has been seen.
func TestKVStoreDeleteRacingPut(t *testing.T) {
	e := embedded(t)
	w, d := kvStore(t, e, "defs"), kvStore(t, e, "defs")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if _, err := w.Put(ctx, store.Definition{ID: "x", Kind: "k"}); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	})
	outcomes := map[string]int{}
	for i := 0; i < 5000 && outcomes["conflict"] == 0; i++ {
		switch err := d.Delete(ctx, "x"); {
		case err == nil:
			outcomes["deleted"]++
		case errors.Is(err, store.ErrNotFound):
			outcomes["not found"]++
		case errors.Is(err, store.ErrConflict):
			outcomes["conflict"]++
		default:
			t.Fatalf("delete racing a put: %v", err)
		}
	}
	cancel()
	wg.Wait()
	t.Logf("deletes racing puts: %v", outcomes)
	if outcomes["conflict"] == 0 {
		t.Fatalf("no delete lost to a put in %v", outcomes)
	}
}
