package mlbridge

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"time"
)

// PoolConfig is the configuration the registry starts bridge name's pool with: its
// declaration translated, defaults left zero (OpenPool fills them) and no Store (the
// registry asks RegistryOptions.Store for it at start). For inspecting what will run.
func (r *Registry) PoolConfig(name string) (PoolConfig, error) {
	r.mu.Lock()
	e, ok := r.bridges[name]
	r.mu.Unlock()
	if !ok {
		return PoolConfig{}, fmt.Errorf("%w %q", ErrUnknownBridge, name)
	}
	return r.poolConfig(e), nil
}

// poolConfig translates a bridge's declaration, one field for one key.
func (r *Registry) poolConfig(e *registryEntry) PoolConfig {
	b := e.cfg
	size := cmp.Or(b.Workers, 2)
	autoscale := b.MinSize > 0 || b.MaxSize > 0
	if autoscale {
		size = b.Workers // OpenPool starts MinSize workers when unset
	}
	if b.Mode == "process" {
		size = 1
	}
	var env []string
	for _, k := range slices.Sorted(maps.Keys(b.EnvValues)) {
		env = append(env, k+"="+b.EnvValues[k])
	}
	cfg := PoolConfig{
		Config: Config{
			Bridge: b.Bridge, Python: cmp.Or(b.Python, r.python), Dir: b.Dir,
			PythonPath: slices.Clone(b.PythonPath), Env: env,
			EnvAllow: append(slices.Clone(b.Env), b.EnvAllow...),
			Threads:  b.Threads, MaxInFlight: b.MaxInFlight, MaxFrame: int(b.MaxFrame),
			IdleSpin: time.Duration(b.IdleSpin), MaxStreamBuffer: int(b.MaxStreamBuffer),
			HandshakeTimeout:  time.Duration(b.StartTimeout),
			HeartbeatInterval: time.Duration(b.HeartbeatInterval),
			LivenessTimeout:   time.Duration(b.LivenessTimeout),
			HeartbeatTimeout:  time.Duration(b.HeartbeatTimeout),
			ShutdownGrace:     time.Duration(b.ShutdownGrace),
			Logger:            r.opts.Logger.With("bridge", e.name),
		},
		Size: size, MinSize: b.MinSize, MaxSize: b.MaxSize, ScaleDownIdle: time.Duration(b.ScaleDownIdle),
		QueueSize:   b.QueueSize,
		MaxRequests: b.MaxRequests, MaxAge: time.Duration(b.MaxAge), MaxRSS: int64(b.MaxRSS),
		HealthInterval: time.Duration(b.HealthInterval), DrainTimeout: time.Duration(b.DrainTimeout),
		RestartBackoff: time.Duration(b.RestartBackoff), MaxRestartBackoff: time.Duration(b.MaxRestartBackoff),
		CrashLoopThreshold: b.CrashLoopThreshold, CrashLoopWindow: time.Duration(b.CrashLoopWindow),
		CrashLoopCooldown: time.Duration(b.CrashLoopCooldown),
		CallTimeout:       time.Duration(b.CallTimeout), Preload: max(size, b.MaxSize) > 1, Name: e.name,
	}
	if b.Preload != nil {
		cfg.Preload = *b.Preload
	}
	for op, bc := range b.Batching {
		if cfg.Batching == nil {
			cfg.Batching = map[string]BatchPolicy{}
		}
		cfg.Batching[op] = BatchPolicy{MaxSize: bc.MaxSize, MaxWait: time.Duration(bc.MaxWait), Off: bc.Off}
	}
	if r.opts.HostFuncs != nil {
		cfg.HostFuncs = r.opts.HostFuncs(e.name)
	}
	if b.Script != "" {
		// The worker runs in Dir: a script path relative to the host's working directory
		// (the base of a RegistryConfig built in code) must not be read against Dir.
		script, err := filepath.Abs(b.Script)
		if err != nil {
			script = b.Script
		}
		cfg.Bridge = script
		cfg.Args = []string{script, "--mode", "pool-worker", "--worker-id", e.name}
		cfg.Preload = false // a zygote imports a bridge class, not a script
	}
	return cfg
}
