package mlbridge

import (
	"context"
	"errors"
	"fmt"
)

// RemoteBridge declares a bridge served by other machines (mlbridge.yaml: remote:), reached
// over NATS through RegistryOptions.Remote (mlnats.RegistryDialer):
//
//	bridges:
//	  dspy:
//	    remote: {nats: "nats://nats.internal:4222", creds: /etc/mlbridge/client.creds}
type RemoteBridge struct {
	// NATS is the server URL (several comma-separated for a cluster).
	NATS string `yaml:"nats"`
	// Name is the bridge's name on NATS (default: this entry's name).
	Name string `yaml:"name"`
	// Creds is a NATS credentials file (JWT and nkey seed); without it the URL's user and
	// password, if any, authenticate.
	Creds string `yaml:"creds"`
	// Prefix is the first token of the bridge's subjects (default "mlbridge").
	Prefix string `yaml:"prefix"`
	// HostFuncs are the Go functions the bridge's Python handlers may call, served by this
	// process to whichever node runs a call (mlnats.Options.HostFuncs; the nodes forward
	// them with mlnats.Forward). Not read from a file: the Registry sets it from
	// RegistryOptions.HostFuncs(entry) before it dials, as it does for a local entry's pool.
	// A RemoteDialer must serve them (mlnats.RegistryDialer does).
	HostFuncs []HostFunc `yaml:"-" json:"-"`
}

// RemoteDialer connects to a remote bridge: entry is its name in the registry.
type RemoteDialer func(ctx context.Context, entry string, rb RemoteBridge) (Adapter, error)

// ErrNoRemoteDialer: the registry declares a remote bridge but was given no
// RegistryOptions.Remote to reach it with.
var ErrNoRemoteDialer = errors.New("mlbridge: a remote bridge needs RegistryOptions.Remote (mlnats.RegistryDialer)")

func (r *Registry) dialRemote(ctx context.Context, e *registryEntry) (Adapter, error) {
	if r.opts.Remote == nil {
		return nil, ErrNoRemoteDialer
	}
	rb := *e.cfg.Remote
	if rb.Name == "" {
		rb.Name = e.name
	}
	if r.opts.HostFuncs != nil {
		rb.HostFuncs = r.opts.HostFuncs(e.name)
	}
	a, err := r.opts.Remote(ctx, e.name, rb)
	if err != nil {
		return nil, fmt.Errorf("remote bridge at %s: %w", rb.NATS, err)
	}
	r.opts.Logger.Info("mlbridge: remote bridge connected", "bridge", e.name, "name", rb.Name)
	return a, nil
}

// validateRemote checks a remote: entry, which runs nothing here.
func (b BridgeConfig) validateRemote(add func(string, ...any)) {
	if b.Bridge != "" || b.Script != "" {
		add("has remote and bridge/script; a remote bridge runs elsewhere, choose one")
	}
	if b.Remote.NATS == "" {
		add("remote needs nats (the server URL)")
	}
}
