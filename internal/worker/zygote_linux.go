package worker

import (
	"os"
	"syscall"
)

// controlPair makes the zygote's control channel (SOCK_SEQPACKET: one message per read, EOF
// when the peer closes), close-on-exec from the start.
func controlPair() (ours, theirs *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "zygote-ctrl"), os.NewFile(uintptr(fds[1]), "zygote-ctrl-child"), nil
}
