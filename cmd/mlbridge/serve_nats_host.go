package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// forwardedFunc is one entry of --nats-host-funcs: what Python's host.functions() shows.
type forwardedFunc struct {
	Description string         `yaml:"description"`
	Schema      map[string]any `yaml:"schema"`
}

// forwardedFuncs reads --nats-host-funcs: the host functions the pool announces to its
// workers, each run by the client that made the call (mlnats.Forward).
func (f *natsFlags) forwardedFuncs() ([]mlbridge.HostFunc, error) {
	if f.hostFuncs == "" {
		return nil, nil
	}
	if f.url == "" {
		return nil, fmt.Errorf("%w: --nats-host-funcs needs --nats (its functions run in the NATS clients)", mlbridge.ErrInvalidConfiguration)
	}
	b, err := os.ReadFile(f.hostFuncs)
	if err != nil {
		return nil, fmt.Errorf("%w: --nats-host-funcs: %w", mlbridge.ErrInvalidConfiguration, err)
	}
	var decl map[string]forwardedFunc
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&decl); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: --nats-host-funcs %s: %w", mlbridge.ErrInvalidConfiguration, f.hostFuncs, err)
	}
	if len(decl) == 0 {
		return nil, fmt.Errorf("%w: --nats-host-funcs %s declares no function", mlbridge.ErrInvalidConfiguration, f.hostFuncs)
	}
	funcs := make([]mlbridge.HostFunc, 0, len(decl))
	for _, name := range slices.Sorted(maps.Keys(decl)) {
		d := decl[name]
		opts := []mlbridge.FuncOption{mlbridge.Describe(d.Description)}
		if d.Schema != nil {
			opts = append(opts, mlbridge.WithSchema(d.Schema))
		}
		funcs = append(funcs, mlnats.Forward(name, opts...))
	}
	return funcs, nil
}
