package mlbridge

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	yamlLineRE    = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlUnknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// explainYAML rewrites the decoder's "line N: ..." messages to name the bridge and the key
// of line N: `bridge "echo": unknown key "wokers" (line 4)`.
func explainYAML(data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = m
		sub := yamlLineRE.FindStringSubmatch(m)
		if sub == nil {
			continue
		}
		line, _ := strconv.Atoi(sub[1])
		what := sub[2]
		if u := yamlUnknownRE.FindStringSubmatch(what); u != nil {
			what = fmt.Sprintf("unknown key %q", u[1])
		}
		bridge, key := locate(doc.Content[0], line)
		var where []string
		if bridge != "" {
			where = append(where, fmt.Sprintf("bridge %q", bridge))
		}
		if key != "" && !strings.Contains(what, strconv.Quote(key)) {
			where = append(where, key)
		}
		where = append(where, what)
		msgs[i] = fmt.Sprintf("%s (line %d)", strings.Join(where, ": "), line)
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// locate finds the bridge and the key whose entry holds line: the last key at or before it.
func locate(root *yaml.Node, line int) (bridge, key string) {
	top, val := lastKeyBefore(root, line)
	if top != "bridges" || val == nil {
		return "", top
	}
	name, b := lastKeyBefore(val, line)
	if b == nil {
		return "", top
	}
	k, _ := lastKeyBefore(b, line)
	return name, k
}

func lastKeyBefore(m *yaml.Node, line int) (string, *yaml.Node) {
	if m.Kind != yaml.MappingNode {
		return "", nil
	}
	var key string
	var val *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Line > line {
			break
		}
		key, val = m.Content[i].Value, m.Content[i+1]
	}
	return key, val
}
