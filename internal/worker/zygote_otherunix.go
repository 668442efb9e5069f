//go:build unix && !linux

package worker

import (
	"os"
	"syscall"
)

// controlPair makes the zygote's control channel. Without SOCK_CLOEXEC (macOS), the pair is
// made and marked close-on-exec under syscall.ForkLock, so no process this host starts
// meanwhile inherits it. (macOS never gets here: it has no AF_UNIX SOCK_SEQPACKET, and no
// zygote, see preload_darwin.go.)
func controlPair() (ours, theirs *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "zygote-ctrl"), os.NewFile(uintptr(fds[1]), "zygote-ctrl-child"), nil
}
