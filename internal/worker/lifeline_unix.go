//go:build unix

package worker

import "syscall"

// guardAttr puts the guardian in the process group led by pid. Joining happens in the child
// before exec: when Start returns, the guardian is in it.
func guardAttr(pid int) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pgid: pid}
}
