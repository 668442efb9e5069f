package worker

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/mlbridge/mlbridge/internal/errs"
	pyruntime "github.com/mlbridge/mlbridge/python"
)

var noModule = regexp.MustCompile(`No module named '([^']+)'`)

// runtimeDeps are the packages the runtime imports at start (python/pyproject.toml's
// dependencies; uvloop is optional and used only when present).
var runtimeDeps = map[string]bool{"msgpack": true}

// missingPackage explains a worker that died importing the runtime or its dependencies:
// the exact command that fixes it, as ErrWorkerPackageMissing. It is nil when stderr shows
// no such failure (a bridge's own imports fail in its hello instead).
func missingPackage(python string, stderr []string, cause error) error {
	for _, line := range stderr {
		m := noModule.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		top, _, _ := strings.Cut(m[1], ".")
		switch {
		case runtimeDeps[top]:
			return fmt.Errorf("%w: interpreter %s lacks %s: run %s: %w",
				errs.ErrWorkerPackageMissing, python, top, errs.InstallCommand(python, top), cause)
		case top == pyruntime.Package:
			// The runtime directory is first on PYTHONPATH: only an interpreter told to
			// ignore it gets here.
			return fmt.Errorf("%w: interpreter %s did not find %s although the runtime the Go module ships is on "+
				"its PYTHONPATH: do Config.Args run it with -E or -I, which ignore PYTHONPATH?: %w",
				errs.ErrWorkerPackageMissing, python, pyruntime.Package, cause)
		}
	}
	return nil
}
