package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/pflag"
)

// minInt is an int flag that refuses values below min when it is parsed, so the error names
// the flag: invalid argument "-3" for "--workers" flag: must be at least 1.
type minInt struct {
	v   *int
	min int
}

func (f minInt) String() string { return strconv.Itoa(*f.v) }
func (f minInt) Type() string   { return "int" }

func (f minInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not a whole number")
	}
	if n < f.min {
		return fmt.Errorf("must be at least %d", f.min)
	}
	*f.v = n
	return nil
}

// intFlagMin defines an int flag whose value must be at least min.
func intFlagMin(fs *pflag.FlagSet, p *int, name string, value, min int, usage string) {
	*p = value
	fs.Var(minInt{p, min}, name, usage)
}

// minDuration is a duration flag that refuses values below min (positive: above zero).
type minDuration struct {
	v        *time.Duration
	positive bool
}

func (f minDuration) String() string {
	if *f.v == 0 {
		return "0" // as pflag's own duration flags: no "(default 0s)" in the help
	}
	return f.v.String()
}

func (f minDuration) Type() string { return "duration" }

func (f minDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (e.g. 10s, 500ms)")
	}
	if f.positive && d <= 0 {
		return fmt.Errorf("must be above zero")
	}
	if d < 0 {
		return fmt.Errorf("must not be negative")
	}
	*f.v = d
	return nil
}

// durationFlagPositive defines a duration flag that must be above zero.
func durationFlagPositive(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(minDuration{p, true}, name, usage)
}

// durationFlagNonNegative defines a duration flag that may be zero (off), never negative.
func durationFlagNonNegative(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(minDuration{p, false}, name, usage)
}
