//go:build unix && !linux

package worker

import (
	"os"
	"syscall"

	"github.com/mlbridge/mlbridge/internal/sockpair"
)

// controlPair makes the zygote's control channel. (macOS never gets here: it has no AF_UNIX
// SOCK_SEQPACKET, and no zygote, see preload_darwin.go.)
func controlPair() (ours, theirs *os.File, err error) {
	return sockpair.New(syscall.SOCK_SEQPACKET, "zygote-ctrl")
}
