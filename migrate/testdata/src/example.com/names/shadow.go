package names

import "github.com/mlbridge/mlbridge/adapters" // the legacy API // want "package adapters is deprecated and no use is left after the rewrites: import the dspy package instead"

// A parameter named dspy shadows the import in the body (not in the result type).
func Configure(dspy string) adapters.LMConfig { // want "adapters.LMConfig is deprecated"
	return adapters.LMConfig{Provider: dspy} // want "adapters.LMConfig is deprecated"
}

// So does a local variable, declared before the site.
func Local() adapters.ProgramInfo { // want "adapters.ProgramInfo is deprecated"
	dspy, mldspy := 1, 2
	_, _ = dspy, mldspy
	return adapters.ProgramInfo{} // want "adapters.ProgramInfo is deprecated"
}
