package mlbridge

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// fractionalInts lists, as "line N: ..." messages, the numbers with a fraction written for
// whole-number settings. The decoder truncates them without a word: workers: 2.9 started 2
// workers, max_requests: 7.5 recycled after 7. It walks the YAML tree alongside the Go type
// the decoder fills.
func fractionalInts(n *yaml.Node, t reflect.Type) []string {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		var msgs []string
		for _, c := range n.Content {
			msgs = append(msgs, fractionalInts(c, t)...)
		}
		return msgs
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		return nil // Duration, ByteSize: they check their own values
	}
	var msgs []string
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			if key == "<<" { // a merge: its mappings fill this struct
				msgs = append(msgs, fractionalInts(val, t)...)
				continue
			}
			if f, ok := fieldOfKey(t, key); ok {
				msgs = append(msgs, fractionalInts(val, f.Type)...)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				msgs = append(msgs, fractionalInts(n.Content[i], t.Elem())...)
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				msgs = append(msgs, fractionalInts(c, t.Elem())...)
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" {
			if f, err := strconv.ParseFloat(n.Value, 64); err != nil || f != math.Trunc(f) {
				msgs = append(msgs, fmt.Sprintf("line %d: %s is not a whole number", n.Line, n.Value))
			}
		}
	}
	return msgs
}

// fieldOfKey is the field of struct t that YAML key fills (its yaml tag's name).
func fieldOfKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
