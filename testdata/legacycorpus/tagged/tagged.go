// Package tagged has a legacy code path that only a build tag compiles (legacyextra), the way
// optional integrations are kept out of default builds.
package tagged

import (
	"context"

	"example.com/legacycorpus/internal/dspy"
)

// Transcript logs whether the extra path is compiled in, and runs it if it is.
func Transcript(ctx context.Context, python string, log *dspy.Log) error {
	if !enabled {
		log.Add("tagged: off")
		return nil
	}
	label, err := classify(ctx, python, "great product")
	log.Add("tagged: on -> %q %s", label, dspy.Outcome(err))
	return nil
}
