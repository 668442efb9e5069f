//go:build unix

package bench

import "syscall"

// kill sends sig to pid (the chaos scenario's worker and host kills).
func kill(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
