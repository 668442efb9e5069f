package mlbridge

import (
	"errors"
	"testing"

	"github.com/mlbridge/mlbridge/internal/shm"
	"github.com/mlbridge/mlbridge/internal/wire"
)

// A result naming a shared segment it cannot read (here: one it never received) cannot be
// inlined: RawErr says so with ErrSerialization, where Raw can only return nil.
func TestRawErrWhenSharedBytesCannotBeInlined(t *testing.T) {
	r := Result{raw: wire.AppendSharedRef(nil, wire.SharedRef{ID: 99, Length: 8}), shared: shm.NewReceived(map[uint64]*shm.Segment{})}
	raw, err := r.RawErr()
	if !errors.Is(err, ErrSerialization) || raw != nil {
		t.Fatalf("RawErr = %x, %v; want nil and ErrSerialization", raw, err)
	}
	if r.Raw() != nil {
		t.Fatal("Raw of a result that cannot be inlined is not nil")
	}
}
