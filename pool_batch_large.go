package mlbridge

import (
	"errors"

	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
)

// Large calls bypass batching. A breq carries its items inline (spec/protocol.md, "Batches"):
// a call with an array at or above Config.SharedMemoryMin would lose shared memory in a batch,
// and with it the promise that such arrays are not bound by MaxFrame; and it gains nothing
// from company (batching pays off for many small calls, while a large one already amortises
// its round trip). So a batched op's call whose arguments carry such an array is sent as an
// ordinary req, which places the array in a segment. With shared memory off the same holds
// from DefaultSharedMemoryMin: measured, a 5.1 MB predict through the pipe took twice as long
// in a batch of one as in a req (docs/BENCHMARKS.md).

// errLargeArgs is how an item's encoding stops at its first large array; the caller then
// takes the ordinary call path. It never reaches a caller.
var errLargeArgs = errors.New("arguments carry a large array")

// largeArgsDetector is the batch item encoder's shared-memory sink: it places nothing, and
// stops the encoding at the first array of at least min bytes, before its bytes are copied.
type largeArgsDetector struct{ min int }

func (d largeArgsDetector) PlaceBytes(data []byte, _ any) (wire.SharedRef, bool, error) {
	if len(data) >= d.min {
		return wire.SharedRef{}, false, errLargeArgs
	}
	return wire.SharedRef{}, false, nil
}

// largeArrayMin is the array size from which a call is not batched: the size from which this
// pool's arrays go through shared memory, or DefaultSharedMemoryMin when they never do.
func (p *Pool) largeArrayMin() int {
	if m := p.wcfg.SharedMemoryMin; m > 0 {
		return m
	}
	return worker.DefaultSharedMemoryMin
}
