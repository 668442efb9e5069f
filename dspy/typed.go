package dspy

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge"
)

// OutputError reports a program output that does not fit the Go type Execute decodes into: a
// field T wants that the program did not return, or a value of another type. It matches
// mlbridge.ErrSerialization — the call succeeded, its result could not be decoded into T —
// and never leaves a silent zero behind.
type OutputError struct {
	Program string
	Field   string // the output field's name
	Want    string // the Go type of T's field
	Got     string // the type of the value returned, or "missing"
	Err     error  // the decoder's error, for a nested value (list, map, struct)
}

func (e *OutputError) Error() string {
	msg := fmt.Sprintf("dspy: program %q: output %q: want %s, got %s", e.Program, e.Field, e.Want, e.Got)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap makes the error match mlbridge.ErrSerialization (and the decoder's error, if any).
func (e *OutputError) Unwrap() []error {
	if e.Err == nil {
		return []error{mlbridge.ErrSerialization}
	}
	return []error{mlbridge.ErrSerialization, e.Err}
}

// Execute runs program id on inputs and decodes its outputs into a T: a struct, or a pointer to
// one. inputs is a map of input field to value, or a struct encoded by the same names.
//
// A field of T takes the output named by its `msgpack` tag, else its `json` tag, else its Go
// name (as mlbridge.Decode matches them; "-" skips a field). Every field must be returned and
// fit: a string output for a string field, a whole number for an integer field (in range), a
// number for a float field, a bool for a bool field; lists, maps and structs are decoded into
// their Go type. A missing output or one of another type is an *OutputError (matching
// mlbridge.ErrSerialization) rather than a zero value. A pointer field is optional: a missing
// output leaves it nil. An embedded struct without a tag name takes its fields' outputs, as
// the decoders promote them. Outputs T has no field for (ChainOfThought's reasoning, say) are
// ignored. A T that is not a struct is mlbridge.ErrInvalidArgument, before any call.
func Execute[T any](ctx context.Context, c *Client, id string, inputs any) (T, error) {
	var zero T
	rt := reflect.TypeFor[T]()
	st := rt
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return zero, fmt.Errorf("%w: dspy.Execute decodes outputs into a struct, not %v", mlbridge.ErrInvalidArgument, rt)
	}
	in, err := inputMap(inputs)
	if err != nil {
		return zero, err
	}
	r, err := c.a.Execute(ctx, id, in)
	if err != nil {
		return zero, err
	}
	var outputs map[string]msgpack.RawMessage
	if err := r.Decode(&outputs); err != nil {
		return zero, fmt.Errorf("%w: program %q: outputs are not a map: %w", mlbridge.ErrSerialization, id, err)
	}
	v := reflect.New(st)
	if err := fill(v.Elem(), outputs, id); err != nil {
		return zero, err
	}
	if rt.Kind() == reflect.Pointer {
		return v.Interface().(T), nil
	}
	return v.Elem().Interface().(T), nil
}

// fill sets every field of struct v from the output of its name.
func fill(v reflect.Value, outputs map[string]msgpack.RawMessage, program string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		promoted, err := fillEmbedded(v.Field(i), f, outputs, program)
		if err != nil {
			return err
		}
		if promoted {
			continue
		}
		name := fieldName(f)
		if !f.IsExported() || name == "-" {
			continue
		}
		raw, ok := outputs[name]
		if !ok {
			if f.Type.Kind() == reflect.Pointer {
				continue
			}
			return &OutputError{Program: program, Field: name, Want: f.Type.String(), Got: "missing"}
		}
		if err := decodeField(raw, v.Field(i)); err != nil {
			err.Program, err.Field = program, name
			return err
		}
	}
	return nil
}

// fillEmbedded fills an embedded struct without a tag name (by value or, exported, by pointer)
// from the outputs of its own fields' names: the decoders of mlbridge.Decode promote them. It
// says whether f was such a field.
func fillEmbedded(v reflect.Value, f reflect.StructField, outputs map[string]msgpack.RawMessage, program string) (bool, error) {
	if !f.Anonymous || tagName(f) != "" {
		return false, nil
	}
	switch {
	case f.Type.Kind() == reflect.Struct:
		return true, fill(v, outputs, program)
	case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct && f.IsExported():
		p := reflect.New(f.Type.Elem())
		if err := fill(p.Elem(), outputs, program); err != nil {
			return true, err
		}
		v.Set(p)
		return true, nil
	}
	return false, nil
}

// fieldName is the output a struct field takes, by the repo's decoding rule.
func fieldName(f reflect.StructField) string {
	if name := tagName(f); name != "" {
		return name
	}
	return f.Name
}

// tagName is the name a field's msgpack, else json, tag gives it ("" for none).
func tagName(f reflect.StructField) string {
	for _, key := range []string{"msgpack", "json"} {
		if tag, ok := f.Tag.Lookup(key); ok {
			if name, _, _ := strings.Cut(tag, ","); name != "" {
				return name
			}
		}
	}
	return ""
}

// decodeField decodes one output into field, refusing scalars of another type (msgpack would
// turn a float into an int or a number into a bool's zero without a word).
func decodeField(raw msgpack.RawMessage, field reflect.Value) *OutputError {
	var val any
	if err := msgpack.Unmarshal(raw, &val); err != nil {
		return &OutputError{Want: field.Type().String(), Got: "undecodable", Err: err}
	}
	target, optional := field, field.Kind() == reflect.Pointer
	if optional {
		if val == nil {
			return nil // an optional output given as None
		}
		target = reflect.New(field.Type().Elem()).Elem()
	}
	mismatch := &OutputError{Want: field.Type().String(), Got: fmt.Sprintf("%T", val)}
	if val == nil {
		mismatch.Got = "null"
	}
	rv := reflect.ValueOf(val)
	switch target.Kind() {
	case reflect.String:
		s, ok := val.(string)
		if !ok {
			return mismatch
		}
		target.SetString(s)
	case reflect.Bool:
		b, ok := val.(bool)
		if !ok {
			return mismatch
		}
		target.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := asInt(rv)
		if !ok || target.OverflowInt(n) {
			return mismatch
		}
		target.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := asInt(rv)
		if !ok || n < 0 || target.OverflowUint(uint64(n)) {
			return mismatch
		}
		target.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		switch {
		case rv.CanFloat():
			target.SetFloat(rv.Float())
		case rv.CanInt():
			target.SetFloat(float64(rv.Int()))
		case rv.CanUint():
			target.SetFloat(float64(rv.Uint()))
		default:
			return mismatch
		}
	case reflect.Interface:
		if val != nil {
			if !rv.Type().AssignableTo(target.Type()) {
				return mismatch
			}
			target.Set(rv)
		}
	default: // lists, maps, structs: the decoder checks their shape
		if err := decode(raw, target.Addr().Interface()); err != nil {
			mismatch.Err = err
			return mismatch
		}
	}
	if optional {
		field.Set(target.Addr())
	}
	return nil
}

func asInt(rv reflect.Value) (int64, bool) {
	switch {
	case rv.CanInt():
		return rv.Int(), true
	case rv.CanUint() && rv.Uint() <= 1<<63-1:
		return int64(rv.Uint()), true
	}
	return 0, false
}

// decode is mlbridge.Result.Decode's decoder: msgpack tags, then json tags.
func decode(raw []byte, v any) error {
	dec := msgpack.NewDecoder(bytes.NewReader(raw))
	dec.SetCustomStructTag("json")
	return dec.Decode(v)
}

// inputMap is inputs as a map: a map as is, a struct encoded by its field names.
func inputMap(inputs any) (map[string]any, error) {
	if m, ok := inputs.(map[string]any); ok {
		return m, nil
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	var m map[string]any
	if err := enc.Encode(inputs); err == nil {
		err = msgpack.Unmarshal(buf.Bytes(), &m)
		if err == nil && m != nil {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w: inputs must be a map of field name to value or a struct, not %T", mlbridge.ErrInvalidArgument, inputs)
}
