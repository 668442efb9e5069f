package migrate_test

import (
	"testing"

	"github.com/mlbridge/mlbridge/migrate"
)

// A //go:build line that selects a file only under the "ignore" tag marks a generator; one
// that excludes it under that tag (!ignore) is a file of every ordinary build.
func TestMentionsIgnore(t *testing.T) {
	for line, want := range map[string]bool{
		"//go:build ignore":           true,
		"//go:build ignore && linux":  true,
		"//go:build linux || ignore":  true,
		"//go:build !ignore":          false,
		"//go:build !(ignore || foo)": false,
		"//go:build linux":            false,
		"// not a constraint":         false,
	} {
		if got := migrate.MentionsIgnore(line); got != want {
			t.Errorf("%s: %v, want %v", line, got, want)
		}
	}
}
