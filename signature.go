package mlbridge

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Field is one input or output of a Signature.
type Field struct {
	Name string
	// Type is the normalized type annotation ("str" when none was written): str, int, float,
	// bool, list[T], dict[str, T], Optional[T], Literal['a', 'b'].
	Type string
	Desc string
}

// Signature is a DSPy-style signature: "context: list[str], question: str -> answer: str,
// confidence: float". It is parsed and validated in Go, so a bad one fails before anything
// reaches Python — and never falls back to a default.
type Signature struct {
	Inputs       []Field
	Outputs      []Field
	Instructions string
}

// SignatureError says what is wrong with a signature string and where. It matches
// ErrInvalidArgument.
type SignatureError struct {
	Input  string
	Offset int // byte offset into Input
	Msg    string
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("mlbridge: invalid signature %q at offset %d: %s", e.Input, e.Offset, e.Msg)
}

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *SignatureError) Is(target error) bool { return target == ErrInvalidArgument }

// ParseSignature parses "inputs -> outputs", each a comma-separated list of `name` or
// `name: type`.
func ParseSignature(s string) (Signature, error) {
	fail := func(off int, format string, args ...any) (Signature, error) {
		return Signature{}, &SignatureError{Input: s, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	arrow := strings.Index(s, "->")
	if arrow < 0 {
		return fail(len(s), `missing "->" between inputs and outputs`)
	}
	if strings.Contains(s[arrow+2:], "->") {
		return fail(arrow+2+strings.Index(s[arrow+2:], "->"), `more than one "->"`)
	}
	inputs, err := parseFields(s, 0, arrow)
	if err != nil {
		return Signature{}, err
	}
	outputs, err := parseFields(s, arrow+2, len(s))
	if err != nil {
		return Signature{}, err
	}
	seen := map[string]bool{}
	for _, f := range slices.Concat(inputs, outputs) {
		if seen[f.Name] {
			return fail(strings.Index(s, f.Name), "field %q appears twice", f.Name)
		}
		seen[f.Name] = true
	}
	return Signature{Inputs: inputs, Outputs: outputs}, nil
}

// String renders the signature in the canonical form ParseSignature accepts.
func (sig Signature) String() string {
	list := func(fs []Field) string {
		parts := make([]string, len(fs))
		for i, f := range fs {
			parts[i] = f.Name + ": " + f.Type
		}
		return strings.Join(parts, ", ")
	}
	return list(sig.Inputs) + " -> " + list(sig.Outputs)
}

// parseFields parses s[start:end] as a non-empty comma-separated field list. Commas inside
// brackets belong to types.
func parseFields(s string, start, end int) ([]Field, error) {
	side := "inputs"
	if start > 0 {
		side = "outputs"
	}
	var fields []Field
	depth, from := 0, start
	flush := func(to int) error {
		f, err := parseField(s, from, to)
		if err != nil {
			return err
		}
		fields = append(fields, f)
		from = to + 1
		return nil
	}
	for i := start; i < end; i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
			if depth < 0 {
				return nil, &SignatureError{Input: s, Offset: i, Msg: `unbalanced "]"`}
			}
		case ',':
			if depth == 0 {
				if err := flush(i); err != nil {
					return nil, err
				}
			}
		}
	}
	if depth != 0 {
		return nil, &SignatureError{Input: s, Offset: end, Msg: `unbalanced "["`}
	}
	if strings.TrimSpace(s[from:end]) == "" && len(fields) == 0 {
		return nil, &SignatureError{Input: s, Offset: start, Msg: "no " + side}
	}
	if err := flush(end); err != nil {
		return nil, err
	}
	return fields, nil
}

func parseField(s string, from, to int) (Field, error) {
	text := s[from:to]
	name, typ, typed := strings.Cut(text, ":")
	name = strings.TrimSpace(name)
	off := from + strings.Index(text, strings.TrimLeft(text, " \t"))
	if name == "" {
		return Field{}, &SignatureError{Input: s, Offset: off, Msg: "empty field name"}
	}
	if !isIdentifier(name) {
		return Field{}, &SignatureError{Input: s, Offset: off, Msg: fmt.Sprintf("%q is not a valid field name", name)}
	}
	if pythonKeywords[name] {
		return Field{}, &SignatureError{Input: s, Offset: off, Msg: fmt.Sprintf("%q is a Python keyword", name)}
	}
	f := Field{Name: name, Type: "str"}
	if typed {
		t, err := normalizeType(strings.TrimSpace(typ))
		if err != nil {
			return Field{}, &SignatureError{Input: s, Offset: from + strings.Index(text, ":") + 1, Msg: err.Error()}
		}
		f.Type = t
	}
	return f, nil
}

var scalarTypes = map[string]bool{"str": true, "int": true, "float": true, "bool": true}

// normalizeType checks a type annotation against the supported grammar and returns it with
// canonical spacing.
func normalizeType(t string) (string, error) {
	if t == "" {
		return "", fmt.Errorf("missing type after \":\"")
	}
	if scalarTypes[t] {
		return t, nil
	}
	open := strings.IndexByte(t, '[')
	if open < 0 || !strings.HasSuffix(t, "]") {
		return "", fmt.Errorf("unsupported type %q (want str, int, float, bool, list[T], dict[str, T], Optional[T] or Literal[...])", t)
	}
	head, inner := strings.TrimSpace(t[:open]), t[open+1:len(t)-1]
	args := splitTop(inner)
	switch head {
	case "list", "List", "Optional":
		if len(args) != 1 {
			return "", fmt.Errorf("%s takes one type, got %d", head, len(args))
		}
		a, err := normalizeType(args[0])
		if err != nil {
			return "", err
		}
		if head == "List" {
			head = "list"
		}
		return head + "[" + a + "]", nil
	case "dict", "Dict":
		if len(args) != 2 || strings.TrimSpace(args[0]) != "str" {
			return "", fmt.Errorf("dict takes [str, T], got %q", t)
		}
		v, err := normalizeType(args[1])
		if err != nil {
			return "", err
		}
		return "dict[str, " + v + "]", nil
	case "Literal":
		if len(args) == 0 || args[0] == "" {
			return "", fmt.Errorf("Literal needs at least one value")
		}
		vals := make([]string, len(args))
		for i, a := range args {
			a = strings.TrimSpace(a)
			if !isLiteralValue(a) {
				return "", fmt.Errorf("Literal value %q must be a quoted string, a number, True or False", a)
			}
			vals[i] = a
		}
		return "Literal[" + strings.Join(vals, ", ") + "]", nil
	}
	return "", fmt.Errorf("unsupported type %q", head)
}

// splitTop splits on commas outside brackets and quotes.
func splitTop(s string) []string {
	var out []string
	depth, from := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[from:i]))
			from = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[from:]))
}

func isLiteralValue(v string) bool {
	if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
		return !strings.ContainsRune(v[1:len(v)-1], rune(v[0]))
	}
	if v == "True" || v == "False" {
		return true
	}
	_, err := fmt.Sscanf(v, "%g", new(float64))
	return err == nil
}

func isIdentifier(s string) bool {
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))) {
			return false
		}
	}
	return s != ""
}

var pythonKeywords = map[string]bool{
	"False": true, "None": true, "True": true, "and": true, "as": true, "assert": true, "async": true,
	"await": true, "break": true, "class": true, "continue": true, "def": true, "del": true, "elif": true,
	"else": true, "except": true, "finally": true, "for": true, "from": true, "global": true, "if": true,
	"import": true, "in": true, "is": true, "lambda": true, "nonlocal": true, "not": true, "or": true,
	"pass": true, "raise": true, "return": true, "try": true, "while": true, "with": true, "yield": true,
}
