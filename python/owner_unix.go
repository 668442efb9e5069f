//go:build unix

package pyruntime

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedByMe: only a directory this user owns keeps others from changing its mode or its
// contents between our check and our use.
func ownedByMe(st fs.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == os.Geteuid()
}
