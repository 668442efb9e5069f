package mlbridge_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/worker/fakeworker"
)

// A worker that answers a batch wrongly fails every call of that batch with ErrProtocol, and
// nothing else: the next batch is served. Over fake workers (the Python worker never does this).
func TestBatchWrongAnswerIsAProtocolError(t *testing.T) {
	for _, reply := range []string{"short", "res_ok"} {
		t.Run(reply, func(t *testing.T) {
			l := &fakeworker.Launcher{Script: func(int) fakeworker.Behavior {
				return fakeworker.Behavior{BatchEcho: 4, BatchReply: reply}
			}}
			p := openFake(t, fakePoolConfig(l, 1))
			errs := batchEchoes(p, 4)
			for i, err := range errs {
				if !errors.Is(err, mlbridge.ErrProtocol) {
					t.Fatalf("caller %d: %v", i, err)
				}
			}
			if !p.Healthy() {
				t.Fatal("the pool is not healthy after a faulty batch answer")
			}
		})
	}
}

// Over a well-behaved fake, each caller gets its own args back from a shared batch.
func TestBatchOverFake(t *testing.T) {
	l := &fakeworker.Launcher{Script: func(int) fakeworker.Behavior { return fakeworker.Behavior{BatchEcho: 4} }}
	p := openFake(t, fakePoolConfig(l, 1))
	for i, err := range batchEchoes(p, 10) {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if st := p.Stats().Batching["echo"]; st.Calls != 10 || st.Largest > 4 || st.Batches < 3 {
		t.Fatalf("batching: %+v", st)
	}
}

// batchEchoes calls echo {"i": i} from n goroutines; a caller whose answer is not its own
// args gets an error saying so.
func batchEchoes(p *mlbridge.Pool, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := mlbridge.Decode[map[string]int](p.Call(context.Background(), "echo", map[string]any{"i": i}))
			if err == nil && got["i"] != i {
				err = errors.New("another caller's answer")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errs
}
