package shm

import (
	"os"
	"syscall"
)

// Pair makes a worker's segment channel: the host's end and the worker's (which the worker
// inherits), both close-on-exec from the start. SOCK_STREAM on every Unix (macOS has no
// SOCK_SEQPACKET for AF_UNIX); messages are fixed-size, so they need no framing.
func Pair() (host, child *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "mlbridge-shm"), os.NewFile(uintptr(fds[1]), "mlbridge-shm-child"), nil
}
