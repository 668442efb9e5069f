package mlnats_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// Host-call values over the NATS max payload (1 MiB by default): the echo bridge's
// host_call_big makes an argument of a pattern in Python and hands it to "bigdata", a Go
// function of the client that checks it and answers with another pattern, whose length
// and sha256 Python returns.

type bigIn struct {
	Data       []byte `json:"data"`
	ResultSize int    `json:"result_size"`
}

type bigOut struct {
	Data []byte `json:"data"`
}

// argPattern is what host_call_big sends: byte i is i % 251.
func argPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// resultPattern is what bigdata answers, unlike the argument so that an echo cannot pass.
func resultPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*7 + 3) % 256)
	}
	return b
}

// bigData is the client's Go function; it records the sizes of the arguments it checked.
type bigData struct {
	mu   sync.Mutex
	seen []int
}

func (d *bigData) fn() mlbridge.HostFunc {
	return mlbridge.Func("bigdata", func(ctx context.Context, in bigIn) (bigOut, error) {
		if !bytes.Equal(in.Data, argPattern(len(in.Data))) {
			return bigOut{}, fmt.Errorf("%w: %d bytes, not the pattern", mlbridge.ErrInvalidArgument, len(in.Data))
		}
		d.mu.Lock()
		d.seen = append(d.seen, len(in.Data))
		d.mu.Unlock()
		return bigOut{Data: resultPattern(in.ResultSize)}, nil
	})
}

func (d *bigData) checked() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.seen)
}

type bigAnswer struct {
	Len      int    `json:"len"`
	SHA256   string `json:"sha256"`
	Class    string `json:"class"`
	Category string `json:"category"`
	Message  string `json:"message"`
}

func callBig(t *testing.T, r *mlnats.Remote, size, resultSize int) bigAnswer {
	t.Helper()
	// The deadline only tells a hang from an answer.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := mlbridge.Decode[bigAnswer](r.Call(ctx, "host_call_big", map[string]any{"fn": "bigdata", "size": size, "result_size": resultSize}))
	if err != nil {
		t.Fatalf("host_call_big(%d, %d): %v", size, resultSize, err)
	}
	return got
}

// TestHostFuncLargeValues: a Python handler on a node passes 3 MiB to the client's Go
// function and gets 5 MiB back, both over the max payload: the arguments cross through the
// node's bucket, the result through the client's, contents intact, and both buckets are
// empty afterwards. Small values still cross in the message.
func TestHostFuncLargeValues(t *testing.T) {
	e := embedded(t)
	d := &bigData{}
	forwardingNode(t, e, func(c *mlnats.NodeConfig) { c.Blobs = mlnats.BlobConfig{Bucket: "node-values"} }, mlnats.ForwardFunc(d.fn()))
	r := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{d.fn()}, Blobs: mlnats.BlobConfig{Bucket: "client-values"},
		LostAfter: 10 * time.Second}) // this process runs server, client and node under -race

	const argSize, resultSize = 3 << 20, 5 << 20
	want := sha256.Sum256(resultPattern(resultSize))
	for i := range 2 { // the second time through buckets and connections already open
		got := callBig(t, r, argSize, resultSize)
		if got.Class != "" || got.Len != resultSize || got.SHA256 != hex.EncodeToString(want[:]) {
			t.Fatalf("call %d: Python saw %+v, want %d bytes with sha256 %x", i, got, resultSize, want)
		}
	}
	if got := d.checked(); !slices.Equal(got, []int{argSize, argSize}) {
		t.Fatalf("the Go function checked arguments of %v bytes", got)
	}
	small := callBig(t, r, 1000, 2000)
	if small.Class != "" || small.Len != 2000 {
		t.Fatalf("small values: %+v", small)
	}
	// Each side created its bucket on first use (the values went through it, not in a
	// message, which the server would have refused), and deleted what it stored once read.
	for _, bucket := range []string{"node-values", "client-values"} {
		waitFor(t, "no object left in "+bucket, func() bool { return len(objects(t, e, bucket)) == 0 })
	}
}

// TestHostFuncArgumentsOverMaxPayload: with no JetStream, a host call's arguments over the
// max payload fail typed (invalid_argument, ErrPayloadTooLarge's text), at once; small ones
// still cross. TestHostFuncResultOverMaxPayload is the same for a result.
func TestHostFuncArgumentsOverMaxPayload(t *testing.T) {
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{}) // no StoreDir: no JetStream
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	d := &bigData{}
	forwardingNode(t, e, nil, mlnats.ForwardFunc(d.fn()))
	r := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{d.fn()}})

	if got := callBig(t, r, 2<<20, 10); got.Class != "InvalidArgument" || got.Category != "invalid_argument" || !hostContains(got.Message, "max payload") {
		t.Fatalf("2 MiB of arguments: Python saw %+v", got)
	}
	if got := callBig(t, r, 1000, 1000); got.Class != "" || got.Len != 1000 {
		t.Fatalf("small values: %+v", got)
	}
}

// TestHostFuncLargeValuesStoreUnusable: JetStream is on but a side's bucket cannot be
// opened (a name the Object Store refuses): that side's large values fail typed, as without
// JetStream, and the call goes on.
func TestHostFuncLargeValuesStoreUnusable(t *testing.T) {
	e := embedded(t)
	d := &bigData{}
	bad := mlnats.BlobConfig{Bucket: "no such bucket"} // spaces: not a valid bucket name
	forwardingNode(t, e, func(c *mlnats.NodeConfig) { c.Blobs = bad }, mlnats.ForwardFunc(d.fn()))
	r := dial(t, e, mlnats.Options{HostFuncs: []mlbridge.HostFunc{d.fn()}, Blobs: bad})

	if got := callBig(t, r, 2<<20, 10); got.Category != "invalid_argument" || !hostContains(got.Message, "no such bucket") {
		t.Fatalf("2 MiB of arguments, the node's bucket unusable: Python saw %+v", got)
	}
	if got := callBig(t, r, 10, 2<<20); got.Category != "serialization" || !hostContains(got.Message, "no such bucket") {
		t.Fatalf("a 2 MiB result, the client's bucket unusable: Python saw %+v", got)
	}
	if got := d.checked(); !slices.Equal(got, []int{10}) {
		t.Fatalf("the Go function ran for arguments of %v bytes, want only the small ones", got)
	}
}
