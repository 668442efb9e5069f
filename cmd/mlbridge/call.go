package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlbridge/mlbridge"
)

func newCallCmd(g *globalFlags) *cobra.Command {
	var stream bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "call OP [JSON-ARGS]",
		Short: "Start a worker, call one op, print the result as JSON",
		Long: `Starts one worker of --bridge, calls OP with JSON-ARGS (one JSON object; integers stay
integers) and prints the result as one line of JSON on stdout (with --stream, one line per
item). What JSON cannot spell is written as Python's json module writes it, in strings: a
dict key that is not a string becomes one ({0: "a"} prints {"0":"a"}), and NaN, Infinity
and -Infinity are the strings "NaN", "Infinity" and "-Infinity". Errors go to stderr, and
the exit code is 1.`,
		Example: `  mlbridge call add '{"a": 1, "b": 2}'
  mlbridge call count '{"n": 3}' --stream`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var callArgs map[string]any
			if len(args) == 2 {
				var err error
				if callArgs, err = parseArgs(args[1]); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			b, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: g.bridge, Python: g.python, Logger: g.logger()})
			if err != nil {
				return err
			}
			defer b.Close()
			if timeout > 0 {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			out := json.NewEncoder(cmd.OutOrStdout())
			if stream {
				for item, err := range b.Stream(ctx, args[0], callArgs) {
					if err != nil {
						return err
					}
					if err := printValue(out, item); err != nil {
						return err
					}
				}
				return nil
			}
			res, err := b.Call(ctx, args[0], callArgs)
			if err != nil {
				return err
			}
			return printValue(out, res)
		},
	}
	cmd.Flags().BoolVar(&stream, "stream", false, "the op is a generator: print one JSON line per item")
	durationFlagNonNegative(cmd.Flags(), &timeout, "timeout", 0, "deadline for the call (sent to Python; 0: none)")
	return cmd
}

func printValue(out *json.Encoder, r mlbridge.Result) error {
	v, err := r.Value()
	if err != nil {
		return err
	}
	return out.Encode(jsonValue(v))
}

// parseArgs reads one JSON object, keeping integers as integers (JSON has one number type;
// Python handlers tell int from float). Anything after the object is an error, not ignored:
// `'{"a": 1} {"b": 2}'` is a quoting mistake, not a call with a=1.
func parseArgs(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("arguments must be a JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("arguments must be one JSON object: more follows it at offset %d", dec.InputOffset())
	}
	v, err := numbers(m)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// numbers makes each json.Number an int64, a uint64 or a float64. A number that fits none
// is refused: an integer would reach Python rounded through float64
// (12345678901234567890 became 12345678901234567168) and 1e400 as +Inf, without a word.
func numbers(v any) (any, error) {
	var err error
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(x.String(), 10, 64); err == nil {
			return u, nil
		}
		if !strings.ContainsAny(x.String(), ".eE") {
			return nil, fmt.Errorf("arguments: integer %s does not fit in 64 bits", x)
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("arguments: number %s is out of range", x)
		}
		return f, nil
	case []any:
		for i := range x {
			if x[i], err = numbers(x[i]); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k := range x {
			if x[k], err = numbers(x[k]); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}
