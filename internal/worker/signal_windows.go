package worker

import (
	"os"
	"syscall"
)

// signalGroup kills the process itself: Windows has no process groups to signal (and no
// worker is started there, see supported_windows.go).
func (p *process) signalGroup(syscall.Signal) {
	if proc, err := os.FindProcess(p.id); err == nil {
		_ = proc.Kill()
	}
}
