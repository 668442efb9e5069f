//go:build unix

package shm

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/internal/errs"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return b
}

// A received segment is copied out a window at a time: ranges that start mid-page, span
// windows and end at the segment's end come out exact, into dst's memory when it has room.
func TestCopyOutWindows(t *testing.T) {
	const size = 3*window + 12345
	want := pattern(size)
	seg, err := Create(size)
	if err != nil {
		t.Fatal(err)
	}
	copy(seg.Bytes(), want)
	dup, err := dupFile(seg.File())
	if err != nil {
		t.Fatal(err)
	}
	seg.Close()
	recv, err := Open(dup)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	for _, r := range [][2]int{{0, size}, {1, size - 1}, {4095, window + 2}, {window - 1, 2*window + 3}, {size - 5, 5}, {size, 0}} {
		got, err := recv.CopyOut(r[0], r[1], nil)
		if err != nil || !bytes.Equal(got, want[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %v: err %v, equal %v", r, err, bytes.Equal(got, want[r[0]:r[0]+r[1]]))
		}
	}
	buf := make([]byte, 0, size)
	got, _ := recv.CopyOut(0, size, buf)
	if &got[0] != &buf[:1][0] {
		t.Fatal("CopyOut did not reuse dst")
	}
	if _, err := recv.CopyOut(size-4, 5, nil); err == nil {
		t.Fatal("a range past the end was copied")
	}
	recv.Close()
	if _, err := recv.CopyOut(0, 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func dupFile(f *os.File) (*os.File, error) {
	host, child, err := Pair()
	if err != nil {
		return nil, err
	}
	a, err := NewChannel(host)
	if err != nil {
		return nil, err
	}
	b, err := NewChannel(child)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	defer b.Close()
	if err := a.Send(1, f, time.Second); err != nil {
		return nil, err
	}
	return b.Receive(1, time.Second)
}

// Segments sent for two frames before either frame are each found by id, in any order; one
// that never comes is ErrMissing after the timeout.
func TestChannelOutOfOrder(t *testing.T) {
	host, child, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := NewChannel(host)
	b, _ := NewChannel(child)
	defer a.Close()
	defer b.Close()
	segs := map[uint64]*Segment{}
	for id := uint64(1); id <= 3; id++ {
		s, err := Create(4096)
		if err != nil {
			t.Fatal(err)
		}
		s.Bytes()[0] = byte(id)
		segs[id] = s
		if err := a.Send(id, s.File(), time.Second); err != nil {
			t.Fatal(err)
		}
		s.Close() // the message holds its own reference
	}
	for _, id := range []uint64{3, 1, 2} {
		f, err := b.Receive(id, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(f)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := s.CopyOut(0, 1, nil)
		s.Close()
		if got[0] != byte(id) {
			t.Fatalf("segment %d holds %d", id, got[0])
		}
	}
	if _, err := b.Receive(9, 50*time.Millisecond); !errors.Is(err, ErrMissing) {
		t.Fatalf("a segment never sent: %v", err)
	}
}

// received is an answer as the host holds it: segment 7 (8192 bytes of pattern), received
// through a descriptor of its own; s is that segment.
func received(t *testing.T) (r *Received, s *Segment) {
	seg, _ := Create(8192)
	copy(seg.Bytes(), pattern(8192))
	f, err := dupFile(seg.File())
	if err != nil {
		t.Fatal(err)
	}
	seg.Close()
	s, _ = Open(f)
	return NewReceived(map[uint64]*Segment{7: s}), s
}

// A received answer's range is copied out once, straight into the caller's memory, and the
// segment is closed: a second copy is refused.
func TestReceivedCopyTwice(t *testing.T) {
	r, s := received(t)
	one, err := r.CopyOut(7, 100, 50, nil)
	if err != nil || !bytes.Equal(one, pattern(8192)[100:150]) {
		t.Fatalf("first copy: %v", err)
	}
	if s.file != nil {
		t.Fatal("the segment stays open after its copy")
	}
	// the bytes went into the caller's memory: a second copy is refused, not served from it
	if _, err := r.CopyOut(7, 100, 50, nil); !errors.Is(err, errs.ErrInvalidArgument) {
		t.Fatalf("second copy: %v, want ErrInvalidArgument", err)
	}
	if _, err := r.CopyOut(8, 0, 1, nil); err == nil {
		t.Fatal("a segment the answer did not carry was copied")
	}
	r.Close()
}

// Bytes (inlining) keeps a private copy: it and later copies read it, whatever the caller does
// with what it got.
func TestReceivedBytesThenCopies(t *testing.T) {
	r, _ := received(t)
	defer r.Close()
	raw, err := r.Bytes(7, 100, 50)
	if err != nil || !bytes.Equal(raw, pattern(8192)[100:150]) {
		t.Fatalf("Bytes: %v", err)
	}
	raw[0] ^= 0xff // the caller's copy, not the Received's
	for i := range 2 {
		b, err := r.CopyOut(7, 100, 50, nil)
		if err != nil || !bytes.Equal(b, pattern(8192)[100:150]) {
			t.Fatalf("copy %d after Bytes: %v", i+1, err)
		}
		b[1] ^= 0xff
	}
}
