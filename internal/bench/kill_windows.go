package bench

import (
	"errors"
	"syscall"
)

// kill: no POSIX signals on Windows, where mlbridge starts no workers anyway; defined so the
// package builds.
func kill(int, syscall.Signal) error { return errors.ErrUnsupported }
