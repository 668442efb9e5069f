package worker

import (
	"errors"
	"fmt"
)

// errWindows is what starting a worker returns on Windows. The process layer relies on
// process groups (a worker and all it starts are stopped and cleaned up as one), POSIX
// signals (graceful SIGTERM, then SIGKILL) and fd passing (Preload); Windows has none of
// them in the form used here. It matches errors.ErrUnsupported.
var errWindows = fmt.Errorf("mlbridge: running workers on windows is not supported yet (process groups, signals); use WSL2: %w",
	errors.ErrUnsupported)

// supported refuses on Windows, before an interpreter is even looked for.
func supported() error { return errWindows }
