package worker

import "syscall"

// guardAttr: never used, no worker starts on Windows (supported_windows.go).
func guardAttr(int) *syscall.SysProcAttr { return nil }
