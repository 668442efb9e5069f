package mlbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/mlbridge/mlbridge/internal/worker"
	"github.com/mlbridge/mlbridge/store"
)

// Registry hands out an Adapter per declared bridge ("dspy", "langchain", "sklearn", ...).
// Bridges are declared in a RegistryConfig (mlbridge.yaml) or registered in code; each one's
// workers start on first use, after its requirements were checked (Check), and stop on Close.
type Registry struct {
	opts RegistryOptions

	mu      sync.Mutex
	bridges map[string]*registryEntry
	def     string
	python  string
	closed  bool
}

// RegistryOptions are the host-side settings of a Registry.
type RegistryOptions struct {
	Logger *slog.Logger
	// Store returns the definition store of a bridge (default: one in-memory store each).
	Store func(bridge string) store.Store
	// Remote reaches the bridges declared with remote: (mlnats.RegistryDialer(...)).
	Remote RemoteDialer
	// HostFuncs returns the Go functions a bridge's Python handlers may call (default: none):
	// a local bridge's pool registers them; a remote: bridge serves them, from this process,
	// to the nodes that run its calls (RemoteBridge.HostFuncs; the nodes forward them).
	HostFuncs func(bridge string) []HostFunc
}

type registryEntry struct {
	name string
	cfg  BridgeConfig

	pool     *Pool
	remote   Adapter       // a remote: bridge, once dialed
	starting chan struct{} // closed when a start attempt ends
}

// ErrUnknownBridge: no bridge of that name is declared.
var ErrUnknownBridge = errors.New("mlbridge: unknown bridge")

// NewRegistry validates cfg and returns a registry; nothing starts yet.
func NewRegistry(cfg RegistryConfig, opts RegistryOptions) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Registry{opts: opts, bridges: map[string]*registryEntry{}, def: cfg.Default, python: cfg.Python}
	if r.opts.Logger == nil {
		r.opts.Logger = slog.Default()
	}
	for name, b := range cfg.Bridges {
		r.bridges[name] = &registryEntry{name: name, cfg: b}
	}
	return r, nil
}

// OpenRegistry reads a configuration file (mlbridge.yaml) and returns its registry.
func OpenRegistry(path string, opts RegistryOptions) (*Registry, error) {
	cfg, err := LoadRegistryConfig(path)
	if err != nil {
		return nil, err
	}
	return NewRegistry(cfg, opts)
}

// Register declares a bridge in code. A name already declared is an error.
func (r *Registry) Register(name string, b BridgeConfig) error {
	if err := b.validate(name); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.bridges[name]; ok {
		return fmt.Errorf("%w: bridge %q is already declared", ErrConfig, name)
	}
	r.bridges[name] = &registryEntry{name: name, cfg: b}
	return nil
}

// SetDefault makes name the bridge Default returns.
func (r *Registry) SetDefault(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.bridges[name]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownBridge, name)
	}
	r.def = name
	return nil
}

// Names lists the declared bridges.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.bridges))
}

// Bridge returns the declaration of name.
func (r *Registry) Bridge(name string) (BridgeConfig, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.bridges[name]
	if !ok {
		return BridgeConfig{}, false
	}
	return e.cfg, true
}

// Started reports whether name's workers are running.
func (r *Registry) Started(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.bridges[name]
	return ok && (e.pool != nil || e.remote != nil)
}

// Default returns the default bridge's adapter: the one named by SetDefault or the
// configuration, else the only bridge declared.
func (r *Registry) Default(ctx context.Context) (Adapter, error) {
	r.mu.Lock()
	name := r.def
	if name == "" && len(r.bridges) == 1 {
		for n := range r.bridges {
			name = n
		}
	}
	r.mu.Unlock()
	if name == "" {
		return nil, fmt.Errorf("%w: no default bridge (set default: in the configuration)", ErrUnknownBridge)
	}
	return r.Adapter(ctx, name)
}

// Adapter returns name's adapter, starting its workers on first use. Concurrent first calls
// share one start; a start that failed is tried again by the next call. Requirements (env
// variables, Python version, packages) are checked before anything starts.
func (r *Registry) Adapter(ctx context.Context, name string) (Adapter, error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, ErrClosed
		}
		e, ok := r.bridges[name]
		if !ok {
			r.mu.Unlock()
			return nil, fmt.Errorf("%w %q (declared: %v)", ErrUnknownBridge, name, slices.Sorted(maps.Keys(r.bridges)))
		}
		if e.pool != nil {
			r.mu.Unlock()
			return e.pool, nil
		}
		if e.remote != nil {
			r.mu.Unlock()
			return e.remote, nil
		}
		if wait := e.starting; wait != nil {
			r.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, worker.CtxError(fmt.Sprintf("waiting for bridge %q to start", name), ctx.Err())
			}
		}
		e.starting = make(chan struct{})
		r.mu.Unlock()

		var a Adapter
		var p *Pool
		var err error
		if e.cfg.Remote != nil {
			a, err = r.dialRemote(ctx, e)
		} else if p, err = r.start(ctx, e); err == nil {
			a = p
		}

		r.mu.Lock()
		close(e.starting)
		e.starting = nil
		if err == nil && r.closed {
			err = ErrClosed
			defer a.Close()
		} else if err == nil && p != nil {
			e.pool = p
		} else if err == nil {
			e.remote = a
		}
		r.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("mlbridge: starting bridge %q: %w", name, err)
		}
		return a, nil
	}
}

func (r *Registry) start(ctx context.Context, e *registryEntry) (*Pool, error) {
	if problems := r.check(ctx, e); len(problems) > 0 {
		return nil, problemsError(problems)
	}
	start := time.Now()
	cfg := r.poolConfig(e)
	if r.opts.Store != nil {
		cfg.Store = r.opts.Store(e.name)
	}
	p, err := OpenPool(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if len(e.cfg.Options) > 0 {
		if _, err := p.Create(ctx, store.Definition{ID: "bridge_options", Kind: "options", Global: true, Spec: e.cfg.Options}); err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("applying options: %w", err)
		}
	}
	r.opts.Logger.Info("mlbridge: bridge started", "bridge", e.name, "workers", p.cfg.Size, "took", time.Since(start).Round(time.Millisecond))
	return p, nil
}

// Close stops every started bridge.
func (r *Registry) Close() error {
	r.mu.Lock()
	r.closed = true
	var pools []Adapter
	for _, e := range r.bridges {
		if e.pool != nil {
			pools = append(pools, e.pool)
			e.pool = nil
		}
		if e.remote != nil {
			pools = append(pools, e.remote)
			e.remote = nil
		}
	}
	r.mu.Unlock()
	var errs []error
	for _, p := range pools {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
