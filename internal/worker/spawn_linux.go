package worker

import "syscall"

// lockSpawnThread: Pdeathsig is tied to the forking thread (golang/go#27505), so spawn forks
// on a locked thread kept until the child is reaped.
const lockSpawnThread = true

// spawnAttr puts the worker in its own process group and has the kernel SIGKILL it when the
// host dies.
func spawnAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
