package migrate_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/mlbridge/mlbridge/migrate"
)

func TestAnalyzer(t *testing.T) {
	analysistest.RunWithSuggestedFixes(t, analysistest.TestData(), migrate.Analyzer, "example.com/app", "example.com/untouched", "example.com/names", "example.com/extest", "example.com/comments", "example.com/remaining", "example.com/calls", "example.com/kinds", "example.com/promoted", "example.com/teamshapes", "example.com/halfdot")
}
