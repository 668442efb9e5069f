package pyenv

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// requirement is the part of a PEP 508 requirement that deciding "is it installed" needs.
type requirement struct {
	raw    string
	name   string   // as written; importlib.metadata normalizes it
	specs  []string // e.g. ">=1.5", "<2"
	marker string   // empty: always applies
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*`)

func parseRequirement(s string) (requirement, error) {
	r := requirement{raw: s}
	spec, marker, _ := strings.Cut(s, ";")
	r.marker = strings.TrimSpace(marker)
	spec = strings.TrimSpace(spec)
	r.name = nameRE.FindString(spec)
	if r.name == "" {
		return r, fmt.Errorf("requirement %q: no package name", s)
	}
	rest := strings.TrimSpace(spec[len(r.name):])
	if strings.HasPrefix(rest, "[") { // extras of the dependency: installed with it
		if i := strings.Index(rest, "]"); i >= 0 {
			rest = rest[i+1:]
		}
	}
	rest = strings.Trim(strings.TrimSpace(rest), "()")
	for _, sp := range strings.Split(rest, ",") {
		if sp = strings.ReplaceAll(sp, " ", ""); sp != "" {
			r.specs = append(r.specs, sp)
		}
	}
	return r, nil
}

// satisfiedBy reports whether installed version v meets every specifier.
func (r requirement) satisfiedBy(v string) bool {
	for _, sp := range r.specs {
		if !specMatches(sp, v) {
			return false
		}
	}
	return true
}

func specMatches(spec, v string) bool {
	for _, op := range []string{"===", "~=", "==", "!=", ">=", "<=", ">", "<"} {
		want, ok := strings.CutPrefix(spec, op)
		if !ok {
			continue
		}
		if op == "===" {
			return v == want
		}
		if prefix, wild := strings.CutSuffix(want, ".*"); wild && (op == "==" || op == "!=") {
			got := parseVersion(v)
			p := parseVersion(prefix)
			match := len(got.release) >= len(p.release) && compareRelease(got.release[:len(p.release)], p.release) == 0
			return match == (op == "==")
		}
		c := compareVersions(v, want)
		switch op {
		case "~=": // ~=1.4.2: >=1.4.2 and ==1.4.*
			w := parseVersion(want)
			if c < 0 || len(w.release) < 2 {
				return c >= 0
			}
			p := w.release[:len(w.release)-1]
			got := parseVersion(v).release
			return len(got) >= len(p) && compareRelease(got[:len(p)], p) == 0
		case "==":
			return c == 0
		case "!=":
			return c != 0
		case ">=":
			return c >= 0
		case "<=":
			return c <= 0
		case ">":
			return c > 0
		case "<":
			return c < 0
		}
	}
	return false // an operator this check does not know: let the installer decide
}

// version is the PEP 440 subset this check orders by: release numbers, then a pre-release
// (before the release), nothing, or a post-release (after it). Dev and local parts are ignored.
type version struct {
	release []int
	phase   int // -1 pre-release, 0 final, 1 post-release
	n       int // the pre/post number
}

var versionRE = regexp.MustCompile(`^v?(\d+(?:\.\d+)*)(?:[-_.]?(a|alpha|b|beta|c|rc|pre|preview)[-_.]?(\d*))?(?:[-_.]?(post|rev|r)[-_.]?(\d*))?`)

func parseVersion(s string) version {
	m := versionRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return version{}
	}
	var v version
	for _, part := range strings.Split(m[1], ".") {
		n, _ := strconv.Atoi(part)
		v.release = append(v.release, n)
	}
	switch {
	case m[2] != "":
		v.phase = -1
		v.n, _ = strconv.Atoi(m[3])
	case m[4] != "":
		v.phase = 1
		v.n, _ = strconv.Atoi(m[5])
	}
	return v
}

func compareRelease(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		x, y := 0, 0
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func compareVersions(a, b string) int {
	va, vb := parseVersion(a), parseVersion(b)
	if c := compareRelease(va.release, vb.release); c != 0 {
		return c
	}
	if va.phase != vb.phase {
		if va.phase < vb.phase {
			return -1
		}
		return 1
	}
	switch {
	case va.n < vb.n:
		return -1
	case va.n > vb.n:
		return 1
	}
	return 0
}
