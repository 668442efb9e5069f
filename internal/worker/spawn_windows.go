package worker

import "syscall"

// Never used: spawn refuses on Windows first (supported_windows.go). Defined so the package
// builds.
const lockSpawnThread = false

func spawnAttr() *syscall.SysProcAttr { return nil }
