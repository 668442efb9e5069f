//go:build unix && !linux

package sockpair

import (
	"os"
	"syscall"
)

// New makes a Unix socket pair of type sotype (syscall.SOCK_STREAM, SOCK_SEQPACKET); name names
// the files (the other end is name+"-child"). Without SOCK_CLOEXEC (macOS) the pair is made and
// marked close-on-exec under syscall.ForkLock, so no process started meanwhile inherits it.
func New(sotype int, name string) (ours, theirs *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, sotype, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), name), os.NewFile(uintptr(fds[1]), name+"-child"), nil
}
