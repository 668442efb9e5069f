package shm

import (
	"os"

	"golang.org/x/sys/unix"
)

// newFile is an anonymous memory file: it has no name anywhere, so it cannot outlive the last
// mapping or descriptor of it.
func newFile() (*os.File, error) {
	fd, err := unix.MemfdCreate("mlbridge-array", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "mlbridge-array"), nil
}

// release frees the memory behind mem[from:to] (whole pages inside it): a hole punched in the
// memfd, so a result being copied out is never resident twice.
func release(mem []byte, from, to int) {
	page := os.Getpagesize()
	from = (from + page - 1) / page * page
	to = to / page * page
	if to <= from {
		return
	}
	_ = unix.Madvise(mem[from:to], unix.MADV_REMOVE)
}
