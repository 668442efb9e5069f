package mlbridge

import (
	"errors"

	"github.com/mlbridge/mlbridge/internal/shm"
	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
)

// Large calls bypass batching. A breq carries its items inline (spec/protocol.md, "Batches"):
// a call with an array at or above Config.SharedMemoryMin would lose shared memory in a batch,
// and with it the promise that such arrays are not bound by MaxFrame; and it gains nothing
// from company (batching pays off for many small calls, while a large one already amortises
// its round trip). So when the pool uses shared memory, a batched op's call whose arguments
// carry such an array is sent as an ordinary req, which places the array in a segment.

// errLargeArgs is how an item's encoding stops at its first array bound for shared memory;
// the caller then takes the ordinary call path. It never reaches a caller.
var errLargeArgs = errors.New("arguments carry an array for shared memory")

// largeArgsDetector is the batch item encoder's shared-memory sink: it places nothing, and
// stops the encoding at the first array of at least min bytes, before its bytes are copied.
type largeArgsDetector struct{ min int }

func (d largeArgsDetector) PlaceBytes(data []byte, _ any) (wire.SharedRef, bool, error) {
	if len(data) >= d.min {
		return wire.SharedRef{}, false, errLargeArgs
	}
	return wire.SharedRef{}, false, nil
}

// sharedMemoryMin is the array size from which this pool's calls send data through shared
// memory, or 0 if they never do.
func (p *Pool) sharedMemoryMin() int {
	switch m := p.wcfg.SharedMemoryMin; {
	case !shm.Supported || m < 0:
		return 0
	case m == 0:
		return worker.DefaultSharedMemoryMin
	default:
		return m
	}
}
