package mlbridge

import "github.com/mlbridge/mlbridge/internal/worker"

// SetLauncher makes workers of c come from l instead of local Python processes
// (internal/worker/fakeworker's launcher, in tests).
func SetLauncher(c *Config, l worker.Launcher) { c.launcher = l }
