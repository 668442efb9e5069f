package promoted

import (
	"context"

	"example.com/wrapped"
)

// Use calls the legacy methods promoted through another package's unexported embedded field:
// the calls go through the promoted Client, which this package can select.
func Use(ctx context.Context, pub *wrapped.Public, sh *wrapped.Shadowed) error {
	info, err := pub.GetProgramInfo(ctx, "id") // want `adapters\.PythonPoolV2\.GetProgramInfo is deprecated: call pub\.Client\.GetProgramInfo$`
	if err != nil {
		return err
	}
	describe := (*wrapped.Public).GetProgramInfo // want `\(\*wrapped\.Public\)\.GetProgramInfo uses deprecated adapters\.PythonPoolV2\.GetProgramInfo: replace with func\(p \*wrapped\.Public, ctx context\.Context, id string\) \(dspy\.ProgramInfo, error\) \{ return p\.Client\.GetProgramInfo\(ctx, id\) \}$`
	health := pub.HealthCheck                    // want `pub\.HealthCheck uses deprecated adapters\.PythonPoolV2\.HealthCheck: replace with pub\.Client\.Adapter\(\)\.Health$`
	_, _, _ = info, describe, health
	_, err = sh.ListPrograms(ctx) // want `sh\.ListPrograms uses deprecated adapters\.PythonPoolV2\.ListPrograms: no selector from this package reaches the embedded legacy value's Client`
	return err
}
