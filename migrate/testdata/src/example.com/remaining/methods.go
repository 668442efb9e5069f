package remaining

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated"
)

// MyPool embeds the legacy pool: its promoted methods are legacy calls too.
type MyPool struct{ *adapters.PythonPoolV2 } // want "adapters.PythonPoolV2 is deprecated"

// Use holds legacy uses: a method value and method expressions (reported), a promoted call (rewritten).
func Use(ctx context.Context, pool *adapters.PythonPoolV2, mp MyPool) error { // want "adapters.PythonPoolV2 is deprecated"
	run := pool.ExecuteProgram                      // want `pool\.ExecuteProgram uses deprecated adapters\.PythonPoolV2\.ExecuteProgram: replace with pool\.Client\.ExecuteProgram$`
	info := (*adapters.PythonPoolV2).GetProgramInfo // want "adapters.PythonPoolV2 is deprecated" `\(\*adapters\.PythonPoolV2\)\.GetProgramInfo uses deprecated adapters\.PythonPoolV2\.GetProgramInfo: replace with func\(p \*adapters\.PythonPoolV2, ctx context\.Context, id string\) \(dspy\.ProgramInfo, error\) \{ return p\.Client\.GetProgramInfo\(ctx, id\) \}$`
	create := (*MyPool).CreateProgram               // want `\(\*MyPool\)\.CreateProgram uses deprecated adapters\.PythonPoolV2\.CreateProgram: replace with func\(p \*MyPool, ctx context\.Context, sig string, opts \.\.\.dspy\.ProgramOption\) \(string, error\) \{ return p\.PythonPoolV2\.Client\.CreateProgram\(ctx, sig, opts\.\.\.\) \}$`
	_, _, _ = run, info, create
	_, err := mp.ExecuteProgram(ctx, "id", nil) // want `adapters\.PythonPoolV2\.ExecuteProgram is deprecated: call mp\.PythonPoolV2\.Client\.ExecuteProgram$`
	if err != nil {
		return err
	}
	_ = mp.Client // the field go fix writes: not a legacy use
	return mp.Close()
}
