package mlnats

import (
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
)

// RegistryDialer reaches the bridges a Registry declares with remote: (mlbridge.yaml):
// each gets its own connection (reconnecting forever, then connect's options, then the
// entry's creds) and a Remote with opt (the entry's prefix wins). The Registry's host
// functions for the entry (RegistryOptions.HostFuncs) are served with opt.HostFuncs, the
// entry's winning over opt's of the same name. Closing the adapter closes its connection.
//
//	reg, err := mlbridge.OpenRegistry("mlbridge.yaml", mlbridge.RegistryOptions{
//		Remote: mlnats.RegistryDialer(mlnats.Options{}),
//	})
func RegistryDialer(opt Options, connect ...nats.Option) mlbridge.RemoteDialer {
	return func(ctx context.Context, entry string, rb mlbridge.RemoteBridge) (mlbridge.Adapter, error) {
		// Reconnect for as long as it takes, as a node does (serve --nats): with nats.go's
		// default budget (60 attempts, 2 s apart) an outage of two minutes closed the
		// connection for good, and the bridge failed every call until the program
		// restarted. connect may say otherwise.
		opts := append([]nats.Option{nats.Name("mlbridge " + entry), nats.MaxReconnects(-1)}, connect...)
		if rb.Creds != "" {
			opts = append(opts, nats.UserCredentials(rb.Creds))
		}
		nc, err := nats.Connect(rb.NATS, opts...)
		if err != nil {
			return nil, fmt.Errorf("mlnats: connecting: %w: %w", mlbridge.ErrUnavailable, err)
		}
		o := opt
		if rb.Prefix != "" {
			o.Prefix = rb.Prefix
		}
		if len(rb.HostFuncs) > 0 {
			o.HostFuncs = mergeHostFuncs(opt.HostFuncs, rb.HostFuncs)
		}
		r, err := Dial(ctx, nc, rb.Name, o)
		if err != nil {
			nc.Close()
			return nil, err
		}
		return ownedConn{r, nc}, nil
	}
}

// mergeHostFuncs is base with entry's functions added, an entry's function replacing base's
// of the same name (as the entry's prefix replaces the options'): a program that passed its
// functions to both, as these docs once said to, keeps working. A new slice: base is shared
// by every entry.
func mergeHostFuncs(base, entry []mlbridge.HostFunc) []mlbridge.HostFunc {
	out := slices.DeleteFunc(slices.Clone(base), func(f mlbridge.HostFunc) bool {
		return slices.ContainsFunc(entry, func(e mlbridge.HostFunc) bool { return e.Name() == f.Name() })
	})
	return append(out, entry...)
}

// ownedConn is a Remote that owns its connection.
type ownedConn struct {
	*Remote
	nc *nats.Conn
}

func (o ownedConn) Close() error {
	err := o.Remote.Close()
	o.nc.Close()
	return err
}
