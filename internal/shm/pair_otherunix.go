//go:build unix && !linux

package shm

import (
	"os"
	"syscall"
)

// Pair makes a worker's segment channel (see pair_linux.go). Without SOCK_CLOEXEC the pair is
// made and marked close-on-exec under ForkLock, so no process started meanwhile inherits it.
func Pair() (host, child *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "mlbridge-shm"), os.NewFile(uintptr(fds[1]), "mlbridge-shm-child"), nil
}
