//go:build unix

package shm

import (
	"os"
	"syscall"

	"github.com/mlbridge/mlbridge/internal/sockpair"
)

// Pair makes a worker's segment channel: the host's end and the worker's (which the worker
// inherits), both close-on-exec. SOCK_STREAM on every Unix (macOS has no SOCK_SEQPACKET for
// AF_UNIX); messages are fixed-size, so they need no framing.
func Pair() (host, child *os.File, err error) {
	return sockpair.New(syscall.SOCK_STREAM, "mlbridge-shm")
}
