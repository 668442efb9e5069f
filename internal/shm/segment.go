//go:build unix

package shm

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported says whether this system can share segments with a worker.
const Supported = true

// Segment is a shared-memory file mapped read-write into this process. Its methods are safe
// for concurrent use; Close is idempotent.
type Segment struct {
	mu   sync.Mutex
	file *os.File // nil once closed
	mem  []byte   // the whole mapping of a segment created here; nil for a received one
	size int
}

// Create makes a segment of size bytes (size > 0), zero-filled, mapped read-write.
func Create(size int) (*Segment, error) {
	if size <= 0 {
		return nil, fmt.Errorf("shm: segment size %d", size)
	}
	f, err := newFile()
	if err != nil {
		return nil, fmt.Errorf("shm: create segment: %w", err)
	}
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: size segment: %w", err)
	}
	mem, err := mapFile(f, size)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Segment{file: f, mem: mem, size: size}, nil
}

// Open takes a received segment file. It is not mapped as a whole: CopyOut maps it a window at
// a time, so that copying a large result out never holds it twice in this process.
func Open(f *os.File) (*Segment, error) {
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: stat received segment: %w", err)
	}
	if st.Size() <= 0 || st.Size() > int64(^uint(0)>>1) {
		f.Close()
		return nil, fmt.Errorf("shm: received segment of %d bytes", st.Size())
	}
	return &Segment{file: f, size: int(st.Size())}, nil
}

func mapFile(f *os.File, size int) ([]byte, error) { return mapRange(f, 0, size) }

// mapRange maps size bytes at off (a multiple of the page size). populate: one call maps every
// page, instead of a fault per page as the copy touches them (at 64 MiB, 16,384 faults cost
// more than the copy itself).
func mapRange(f *os.File, off int64, size int) ([]byte, error) {
	p, err := unix.MmapPtr(int(f.Fd()), off, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|mapPopulate)
	if err != nil {
		return nil, fmt.Errorf("shm: map %d bytes of a segment: %w", size, err)
	}
	return unsafe.Slice((*byte)(p), size), nil
}

func unmap(b []byte) error {
	return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
}

// Bytes is the mapping; it must not be used after Close.
func (s *Segment) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mem
}

// Closed reports whether Close was called: the mapping must not be read then.
func (s *Segment) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file == nil
}

// File is the segment's descriptor, for sending (nil for a received segment).
func (s *Segment) File() *os.File { return s.file }

// ErrClosed is returned for a segment used after Close.
var ErrClosed = errors.New("shm: segment closed")

// window is how much of a received segment CopyOut maps at a time.
const window = 4 << 20

// CopyOut copies n bytes at off into dst (reusing its capacity when it is large enough). A
// received segment is mapped a window at a time, each unmapped once copied.
func (s *Segment) CopyOut(off, n int, dst []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil, ErrClosed
	}
	if off < 0 || n < 0 || off > s.size || n > s.size-off {
		return nil, fmt.Errorf("shm: range [%d, +%d) outside a %d-byte segment", off, n, s.size)
	}
	if cap(dst) >= n {
		dst = dst[:n]
	} else {
		dst = make([]byte, n)
	}
	if s.mem != nil {
		copy(dst, s.mem[off:off+n])
		return dst, nil
	}
	page := os.Getpagesize()
	for done := 0; done < n; {
		start := (off + done) / page * page // mappings begin on a page
		skip := off + done - start
		size := min(window, skip+n-done)
		w, err := mapRange(s.file, int64(start), size)
		if err != nil {
			return nil, err
		}
		done += copy(dst[done:], w[skip:])
		if err := unmap(w); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// Close unmaps the segment and closes its descriptor.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.mem != nil {
		err = unmap(s.mem)
		s.mem = nil
	}
	if s.file != nil {
		err = errors.Join(err, s.file.Close())
		s.file = nil
	}
	return err
}
