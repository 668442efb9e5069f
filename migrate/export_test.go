package migrate

import "slices"

// Known is every name of package adapters the analyzer reports a use of: its package-level
// names (renames and reports) and its types' methods (Type.Method).
func Known() []string {
	var names []string
	for name := range renames {
		names = append(names, name)
	}
	for name := range reports {
		names = append(names, name)
	}
	for _, t := range []string{"PythonPort", "PythonPoolV2"} {
		for m := range methodRepl {
			names = append(names, t+"."+m)
		}
	}
	slices.Sort(names)
	return names
}

// MentionsIgnore exposes mentionsIgnore to the tests.
var MentionsIgnore = mentionsIgnore
