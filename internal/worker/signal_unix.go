//go:build unix

package worker

import (
	"errors"
	"syscall"
)

// signalGroup signals the worker's whole process group, so helpers it spawned go too.
func (p *process) signalGroup(sig syscall.Signal) {
	if err := syscall.Kill(-p.id, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(p.id, sig)
	}
}
