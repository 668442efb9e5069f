package pyenv

import (
	"fmt"
	"strings"
)

// evalMarker evaluates a PEP 508 environment marker (sys_platform != "win32" and ...) against
// the interpreter's values. Comparisons of version variables (python_version,
// python_full_version, implementation_version) order as versions, others as strings.
func evalMarker(marker string, env map[string]string) (bool, error) {
	p := &markerParser{toks: tokenizeMarker(marker), env: env}
	v, err := p.or()
	if err == nil && p.i < len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.i])
	}
	if err != nil {
		return false, fmt.Errorf("marker %q: %w", marker, err)
	}
	return v, nil
}

func tokenizeMarker(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				j = len(s) - i - 1
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		case strings.ContainsRune("<>=!~", rune(c)):
			j := i
			for j < len(s) && strings.ContainsRune("<>=!~", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t()<>=!~\"'", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

type markerParser struct {
	toks []string
	i    int
	env  map[string]string
}

func (p *markerParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *markerParser) next() string { t := p.peek(); p.i++; return t }

func (p *markerParser) or() (bool, error) {
	v, err := p.and()
	for err == nil && p.peek() == "or" {
		p.i++
		var w bool
		w, err = p.and()
		v = v || w
	}
	return v, err
}

func (p *markerParser) and() (bool, error) {
	v, err := p.atom()
	for err == nil && p.peek() == "and" {
		p.i++
		var w bool
		w, err = p.atom()
		v = v && w
	}
	return v, err
}

func (p *markerParser) atom() (bool, error) {
	if p.peek() == "(" {
		p.i++
		v, err := p.or()
		if err == nil && p.next() != ")" {
			err = fmt.Errorf("missing )")
		}
		return v, err
	}
	lname := p.next()
	op := p.next()
	if op == "not" && p.peek() == "in" {
		op = "not in"
		p.i++
	}
	rname := p.next()
	left, lok := p.value(lname)
	right, rok := p.value(rname)
	if !lok || !rok {
		return false, fmt.Errorf("unknown value in %s %s %s", lname, op, rname)
	}
	versions := isVersionVar(lname) || isVersionVar(rname)
	switch op {
	case "in":
		return strings.Contains(right, left), nil
	case "not in":
		return !strings.Contains(right, left), nil
	case "==", "!=", "<", "<=", ">", ">=", "~=", "===":
		if versions {
			return specMatches(op+right, left), nil
		}
		switch op {
		case "==", "===":
			return left == right, nil
		case "!=":
			return left != right, nil
		case "<":
			return left < right, nil
		case "<=":
			return left <= right, nil
		case ">":
			return left > right, nil
		case ">=":
			return left >= right, nil
		}
	}
	return false, fmt.Errorf("unknown operator %q", op)
}

func (p *markerParser) value(tok string) (string, bool) {
	if len(tok) >= 2 && (tok[0] == '"' || tok[0] == '\'') {
		return tok[1 : len(tok)-1], true
	}
	v, ok := p.env[tok]
	return v, ok
}

func isVersionVar(name string) bool {
	return name == "python_version" || name == "python_full_version" || name == "implementation_version"
}
