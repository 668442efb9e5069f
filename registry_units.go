package mlbridge

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as a Go duration string in YAML: "30s", "2m", "1h30m".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return yamlTypeError(n, fmt.Sprintf("%q is not a duration like 30s or 2m", n.Value))
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// ByteSize is a number of bytes, written in YAML as an integer (bytes) or with a unit:
// "512MiB", "2GiB" (powers of 1024: KiB, MiB, GiB, TiB) or "500MB", "2GB" (powers of 1000:
// KB, MB, GB, TB), "1.5GiB". Units are case-sensitive; a bare "2G" is refused as ambiguous.
type ByteSize int64

var (
	byteSizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$`)
	byteUnits  = map[string]int64{
		"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	}
)

// ParseByteSize reads a size written as ByteSize documents: "2GiB", "500MB", "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	m := byteSizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size like 2GiB, 512MiB, 500MB or 1048576 (bytes)", s)
	}
	// Exact decimal arithmetic: in float64, "2.01KB" came out 2009.9999999999998 bytes.
	v, ok := new(big.Rat).SetString(m[1])
	if ok {
		v.Mul(v, new(big.Rat).SetInt64(byteUnits[m[2]]))
	}
	if !ok || !v.IsInt() || !v.Num().IsInt64() {
		return 0, fmt.Errorf("%q is not a whole number of bytes that fits in 63 bits", s)
	}
	return ByteSize(v.Num().Int64()), nil
}

// UnmarshalYAML reads bytes or a size with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return yamlTypeError(n, "a size is a number of bytes or a string like 2GiB")
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return yamlTypeError(n, err.Error())
	}
	*b = v
	return nil
}

// String writes b with the largest binary unit that divides it: "2GiB", "1536KiB", "100B".
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		size ByteSize
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// yamlTypeError is how an UnmarshalYAML reports a bad value: the decoder collects it with the
// others, and explainYAML names the bridge and key of its line.
func yamlTypeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}
