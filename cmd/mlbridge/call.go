package main

import (
	"context"
	"encoding/json"
	"errors"
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
	return out.Encode(jsonValue(v, true))
}

// parseArgs reads a JSON object, keeping integers as integers (JSON has one number type;
// Python handlers tell int from float). Anything after the object, and a number no 64-bit
// type holds, is refused rather than dropped or rounded.
func parseArgs(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("arguments must be a JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("arguments must be one JSON object, with nothing after it")
	}
	v, err := numbers(m)
	if err != nil {
		return nil, fmt.Errorf("arguments: %w", err)
	}
	m, _ = v.(map[string]any)
	return m, nil
}

func numbers(v any) (any, error) {
	var err error
	switch x := v.(type) {
	case json.Number:
		return number(x)
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

// number is n as int64, else uint64 (up to 2^64-1, as msgpack carries), else float64 when it
// is written as one and in range.
func number(n json.Number) (any, error) {
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u, nil
	}
	if !strings.ContainsAny(string(n), ".eE") {
		return nil, fmt.Errorf("integer %s does not fit in 64 bits", n)
	}
	f, err := n.Float64()
	if err != nil {
		return nil, fmt.Errorf("number %s is out of float64's range", n)
	}
	return f, nil
}
