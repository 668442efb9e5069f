//go:build unix

package worker

import (
	"os"
	"syscall"
)

// fdRights is the SCM_RIGHTS message that passes files to the zygote.
func fdRights(files ...*os.File) []byte {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	return syscall.UnixRights(fds...)
}
