package calls

import (
	"context"
	"strings"

	"github.com/mlbridge/mlbridge/adapters" // want "package adapters is deprecated"
)

// Embedded promotes the legacy methods.
type Embedded struct {
	*adapters.PythonPort // want "adapters.PythonPort is deprecated"
}

func name() string { return "x" }

// Calls holds legacy method calls of every shape: each is rewritten by replacing the selector
// only, arguments and comments verbatim.
func Calls(ctx context.Context, p *adapters.PythonPoolV2, port *adapters.PythonPort, e Embedded) error { // want "adapters.PythonPoolV2 is deprecated" "adapters.PythonPort is deprecated"
	id, err := p.CreateProgram(ctx, strings.ToUpper(name()), adapters.WithModule(name() /* kept */)) // want `adapters\.PythonPoolV2\.CreateProgram is deprecated: call p\.Client\.CreateProgram$` "adapters.WithModule is deprecated"
	if err != nil {
		return err
	}
	_, err = p.ExecuteProgram(ctx, id, map[string]interface{}{"q": name()}) // want `adapters\.PythonPoolV2\.ExecuteProgram is deprecated: call p\.Client\.ExecuteProgram$`
	_, _ = port.GetProgramInfo(                                             // want `adapters\.PythonPort\.GetProgramInfo is deprecated: call port\.Client\.GetProgramInfo$`
		ctx, // the context
		id,
	)
	_ = (p.GetStats)().Workers                                     // want `adapters\.PythonPoolV2\.GetStats is deprecated: call p\.Client\.Adapter\(\)\.Stats$`
	_ = p.HealthCheck(ctx)                                         // want `adapters\.PythonPoolV2\.HealthCheck is deprecated: call p\.Client\.Adapter\(\)\.Health$`
	_, _ = e.ListPrograms(ctx)                                     // want `adapters\.PythonPort\.ListPrograms is deprecated: call e\.PythonPort\.Client\.ListPrograms$`
	_ = e.PythonPort.DeleteProgram(ctx, name())                    // want `adapters\.PythonPort\.DeleteProgram is deprecated: call e\.PythonPort\.Client\.DeleteProgram$`
	_ = p.Client.ConfigureLM(ctx, adapters.LMConfig{})             // want "adapters.LMConfig is deprecated"
	_, _ = p.Client.CreateProgram(ctx, "q -> a")                   // already rewritten: left alone
	return p.ConfigureLM(ctx, adapters.LMConfig{Provider: name()}) // want `adapters\.PythonPoolV2\.ConfigureLM is deprecated: call p\.Client\.ConfigureLM$` "adapters.LMConfig is deprecated"
}
