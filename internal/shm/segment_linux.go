package shm

import (
	"os"

	"golang.org/x/sys/unix"
)

const mapPopulate = unix.MAP_POPULATE

// newFile is an anonymous memory file: it has no name anywhere, so it cannot outlive the last
// mapping or descriptor of it.
func newFile() (*os.File, error) {
	fd, err := unix.MemfdCreate("mlbridge-array", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "mlbridge-array"), nil
}
