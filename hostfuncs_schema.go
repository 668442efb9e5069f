package mlbridge

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// schemaOf is the JSON Schema of a host function's arguments, from In's fields.
func schemaOf[In any]() map[string]any {
	t := reflect.TypeFor[In]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return map[string]any{"type": "object"} // a map, or any: free-form
	}
	return typeSchema(t, 0)
}

func typeSchema(t reflect.Type, depth int) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "binary"}
		}
		return map[string]any{"type": "array", "items": typeSchema(t.Elem(), depth+1)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": typeSchema(t.Elem(), depth+1)}
	case reflect.Struct:
		if depth > 8 {
			return map[string]any{"type": "object"} // a recursive type: stop describing
		}
		props := map[string]any{}
		required := []any{}
		structFields(t, depth, false, props, &required)
		out := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			out["required"] = required
		}
		return out
	}
	return map[string]any{} // interface{}: anything
}

// structFields describes t's fields into props and required. An embedded struct without a
// tag name is inlined, its fields at this level, as the decoder (and encoding/json) reads
// them; behind a pointer (optional: nil until given) its fields are optional too.
func structFields(t reflect.Type, depth int, optional bool, props map[string]any, required *[]any) {
	for i := range t.NumField() {
		f := t.Field(i)
		if inner, ok := inlined(f); ok {
			if depth <= 8 {
				structFields(inner, depth+1, optional || f.Type.Kind() == reflect.Pointer, props, required)
			}
			continue
		}
		name, opt, skip := fieldName(f)
		if skip {
			continue
		}
		s := typeSchema(f.Type, depth+1)
		if d := f.Tag.Get("desc"); d != "" {
			s["description"] = d
		}
		props[name] = s
		if !optional && !opt && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}

// inlined is the struct type of an embedded struct field (or pointer to one) with no tag
// name, whose fields the decoder reads at the level of the struct embedding it.
func inlined(f reflect.StructField) (reflect.Type, bool) {
	if !f.Anonymous {
		return nil, false
	}
	tag, ok := f.Tag.Lookup("msgpack")
	if !ok {
		tag = f.Tag.Get("json")
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" || tag == "-" {
		return nil, false
	}
	t := f.Type
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, t.Kind() == reflect.Struct
}

// fieldName follows the decoder: the msgpack tag, then the json tag, then the field name.
func fieldName(f reflect.StructField) (name string, optional, skip bool) {
	if !f.IsExported() {
		return "", false, true
	}
	tag, ok := f.Tag.Lookup("msgpack")
	if !ok {
		tag = f.Tag.Get("json")
	}
	if tag == "-" {
		return "", false, true
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero"), false
}

// requiredOf is an object schema's required property names, sorted.
func requiredOf(schema map[string]any) []string {
	req, _ := schema["required"].([]any)
	out := make([]string, 0, len(req))
	for _, r := range req {
		if s, ok := r.(string); ok {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// paramsOf renders an object schema's properties in short: "(city: string, units?: string)".
func paramsOf(schema map[string]any) string {
	props, _ := schema["properties"].(map[string]any)
	if props == nil {
		return "a map of arguments"
	}
	required, _ := schema["required"].([]any)
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		opt := "?"
		if slices.Contains(required, any(n)) {
			opt = ""
		}
		typ, _ := props[n].(map[string]any)["type"].(string)
		parts[i] = fmt.Sprintf("%s%s: %s", n, opt, cmpOr(typ, "any"))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
