package worker

import (
	"os"
	"syscall"

	"github.com/mlbridge/mlbridge/internal/sockpair"
)

// controlPair makes the zygote's control channel (SOCK_SEQPACKET: one message per read, EOF
// when the peer closes), close-on-exec from the start.
func controlPair() (ours, theirs *os.File, err error) {
	return sockpair.New(syscall.SOCK_SEQPACKET, "zygote-ctrl")
}
