//go:build unix && !linux

package worker

import "syscall"

// lockSpawnThread: without Pdeathsig (Linux only) no thread needs to outlive the fork.
const lockSpawnThread = false

// spawnAttr puts the worker in its own process group. There is no Pdeathsig here (macOS, the
// BSDs): the host's death reaches the worker through the group's lifeline guardian, its stdin
// EOF and its getppid watch.
func spawnAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
