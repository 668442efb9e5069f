// Package untouched has nothing to migrate: a local named adapters, and a field called LMConfig.
package untouched

import "github.com/mlbridge/mlbridge/dspy"

type holder struct{ LMConfig dspy.LMConfig }

func F() string {
	adapters := holder{}
	return adapters.LMConfig.Provider
}
