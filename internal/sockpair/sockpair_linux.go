package sockpair

import (
	"os"
	"syscall"
)

// New makes a Unix socket pair of type sotype (syscall.SOCK_STREAM, SOCK_SEQPACKET), both ends
// close-on-exec from the start; name names the files (the other end is name+"-child").
func New(sotype int, name string) (ours, theirs *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, sotype|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), name), os.NewFile(uintptr(fds[1]), name+"-child"), nil
}
