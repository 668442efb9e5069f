package pyruntime

// The worker package's requirements, embedded so that `mlbridge python setup` can prepare a
// Python environment anywhere, outside this repository too.

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
)

// pyproject is the worker package's pyproject.toml: the single source of the runtime's
// dependencies and of each extra's packages.
//
//go:embed pyproject.toml
var pyproject string

// Requirements are the worker package's dependencies, as PEP 508 strings (markers kept).
type Requirements struct {
	Runtime []string            // [project] dependencies: what every worker needs
	Extras  map[string][]string // [project.optional-dependencies], by extra name
}

// ExtraNames returns the extras in alphabetical order.
func (r Requirements) ExtraNames() []string {
	names := make([]string, 0, len(r.Extras))
	for n := range r.Extras {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PyProject returns the embedded pyproject.toml.
func PyProject() string { return pyproject }

// LoadRequirements reads the runtime's and the extras' requirements from the embedded
// pyproject.toml.
func LoadRequirements() (Requirements, error) { return parseRequirements(pyproject) }

// parseRequirements reads the two tables it needs from a pyproject.toml. It understands the
// subset that file uses: [section] headers, comments, and key = [ "string", ... ] arrays that
// may span lines; other keys are skipped.
func parseRequirements(src string) (Requirements, error) {
	r := Requirements{Extras: map[string][]string{}}
	section := ""
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(stripComment(lines[i]))
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[] ")
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		want := (section == "project" && key == "dependencies") || section == "project.optional-dependencies"
		if !want {
			continue
		}
		// gather the whole array, however many lines it spans
		for !strings.Contains(value, "]") && i+1 < len(lines) {
			i++
			value += " " + strings.TrimSpace(stripComment(lines[i]))
		}
		items, err := parseStringArray(value)
		if err != nil {
			return Requirements{}, fmt.Errorf("pyproject.toml [%s] %s: %w", section, key, err)
		}
		if section == "project" {
			r.Runtime = items
		} else {
			r.Extras[strings.Trim(key, `"`)] = items
		}
	}
	if len(r.Runtime) == 0 {
		return Requirements{}, fmt.Errorf("pyproject.toml: no [project] dependencies")
	}
	return r, nil
}

// stripComment drops a # comment that is not inside a double-quoted string.
func stripComment(line string) string {
	inString, escaped := false, false
	for i, c := range line {
		switch {
		case escaped:
			escaped = false
		case c == '\\' && inString:
			escaped = true
		case c == '"':
			inString = !inString
		case c == '#' && !inString:
			return line[:i]
		}
	}
	return line
}

// parseStringArray parses [ "a", "b\"c", ] (basic strings, \" and \\ escapes).
func parseStringArray(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, fmt.Errorf("not an array: %q", s)
	}
	s = s[1 : len(s)-1]
	var out []string
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, nil
		}
		if s[0] != '"' {
			return nil, fmt.Errorf("expected a string at %q", s)
		}
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		if i == len(s) {
			return nil, fmt.Errorf("unterminated string at %q", s)
		}
		out = append(out, b.String())
		s = s[i+1:]
	}
}
