package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// runNATS measures a remote no-op through a node on NATS against its two floors, phases
// alternating in each round: the same no-op on a local pool (local_p50_us), and a raw NATS
// request-reply echo between two connections (nats_p50_us). All on one loopback
// nats-server embedded in this process (over TCP, as separate machines would talk).
// calls_per_s is Concurrency callers over two nodes of Workers workers each.
func runNATS(ctx context.Context, o Options, python string) (*Report, error) {
	emb, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{})
	if err != nil {
		return nil, err
	}
	defer emb.Close()
	conns := []*nats.Conn{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	connect := func() (*nats.Conn, error) {
		nc, err := nats.Connect(emb.URL())
		if err == nil {
			conns = append(conns, nc)
		}
		return nc, err
	}
	cfg := mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: o.Bridge, Python: python, Logger: o.Logger, IdleSpin: o.IdleSpin},
		Size:   o.Workers, Preload: o.Preload,
	}
	const nodes = 2
	for range nodes {
		p, err := mlbridge.OpenPool(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		nc, err := connect()
		if err != nil {
			return nil, err
		}
		n, err := mlnats.NewNode(nc, mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"bench": p}, Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		defer n.Close()
	}
	local, err := mlbridge.OpenPool(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer local.Close()
	cnc, err := connect()
	if err != nil {
		return nil, err
	}
	remote, err := mlnats.Dial(ctx, cnc, "bench", mlnats.Options{Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	defer remote.Close()
	// The raw floor: an echo responder on its own connection.
	enc, err := connect()
	if err != nil {
		return nil, err
	}
	if _, err := enc.Subscribe("mlbridge-bench.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}

	remoteCall := func(ctx context.Context) error { _, err := remote.Call(ctx, "noop", nil); return err }
	localCall := func(ctx context.Context) error { _, err := local.Call(ctx, "noop", nil); return err }
	rawCall := func(ctx context.Context) error {
		_, err := cnc.RequestWithContext(ctx, "mlbridge-bench.echo", []byte{0x80})
		return err
	}

	phase := o.Duration / time.Duration(4*o.Rounds)
	for _, c := range []callFunc{rawCall, localCall, remoteCall} { // warm up
		if _, _, err := sequentialCalls(ctx, c, phase/4); err != nil {
			return nil, err
		}
	}
	var rawLat, localLat, remoteLat, loadLat latencies
	var rates []float64
	var calls, errs int64
	seq := func(c callFunc, into *latencies) error {
		l, e, err := sequentialCalls(ctx, c, phase)
		*into = append(*into, l...)
		errs += e
		return err
	}
	for range o.Rounds {
		if err := seq(rawCall, &rawLat); err != nil {
			return nil, err
		}
		if err := seq(localCall, &localLat); err != nil {
			return nil, err
		}
		if err := seq(remoteCall, &remoteLat); err != nil {
			return nil, err
		}
		res := concurrentCalls(ctx, remoteCall, o.Concurrency, phase)
		rates = append(rates, res.rate)
		loadLat = append(loadLat, res.lat...)
		calls += res.calls
		errs += res.errors
	}
	if errs > 0 {
		return nil, fmt.Errorf("nats: %d calls failed", errs)
	}
	return &Report{
		Scenario: o.Scenario, Workers: o.Workers, Concurrency: o.Concurrency, Nodes: nodes,
		DurationS: o.Duration.Seconds(), Rounds: o.Rounds,
		P50us: micros(remoteLat.percentile(0.50)), P99us: micros(remoteLat.percentile(0.99)),
		LocalP50us: micros(localLat.percentile(0.50)), NatsP50us: micros(rawLat.percentile(0.50)),
		CallsPerS:   median(rates),
		LoadedP50us: micros(loadLat.percentile(0.50)), LoadedP99us: micros(loadLat.percentile(0.99)),
		Calls: calls + int64(len(remoteLat)+len(localLat)+len(rawLat)), Errors: errs,
	}, nil
}
