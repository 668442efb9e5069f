package mlnats

import (
	"context"
	"iter"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// Call implements mlbridge.Adapter: op runs on one of the bridge's nodes.
func (r *Remote) Call(ctx context.Context, op string, args any, opts ...mlbridge.CallOption) (mlbridge.Result, error) {
	data, err := encodeArgs(args)
	if err != nil {
		return mlbridge.Result{}, err
	}
	raw, err := r.roundTrip(ctx, r.subj.call, op, data, mlbridge.SettingsOf(opts...))
	return mlbridge.RawResult(raw), err
}

// Submit implements mlbridge.Adapter. Future.Cancel reaches the node and the Python task.
func (r *Remote) Submit(ctx context.Context, op string, args any, opts ...mlbridge.CallOption) *mlbridge.Future {
	data, err := encodeArgs(args)
	if err != nil {
		return mlbridge.FailedFuture(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	f, complete := mlbridge.NewFuture(cancel)
	set := mlbridge.SettingsOf(opts...)
	go func() {
		defer cancel()
		raw, err := r.roundTrip(ctx, r.subj.submit, op, data, set)
		complete(mlbridge.RawResult(raw), err)
	}()
	return f
}

// Stream implements mlbridge.Adapter. The node sends at most Options.Window chunks ahead
// of the consumer; stopping the loop cancels the generator on the node. Streams are never
// retried.
func (r *Remote) Stream(ctx context.Context, op string, args any, opts ...mlbridge.CallOption) iter.Seq2[mlbridge.Result, error] {
	return func(yield func(mlbridge.Result, error) bool) {
		data, err := encodeArgs(args)
		if err != nil {
			yield(mlbridge.Result{}, err)
			return
		}
		p, err := r.pack(ctx, op, data)
		if err != nil {
			yield(mlbridge.Result{}, err)
			return
		}
		defer r.blobs.dropLater(p.ref)
		// Room for the window, the end, and some heartbeats.
		x, err := r.open(ctx, r.subj.stream, op, p, mlbridge.SettingsOf(opts...), r.opt.Window+16)
		if err != nil {
			yield(mlbridge.Result{}, err)
			return
		}
		defer x.close()
		used := 0
		for {
			m, err := x.next(ctx, op)
			if err != nil {
				yield(mlbridge.Result{}, err)
				return
			}
			switch m.Header.Get(hKind) {
			case kindChunk:
				chunk, ref, err := r.blobs.unpack(ctx, m)
				r.blobs.dropLater(ref)
				if err != nil {
					x.control(ctlCancel, "")
					yield(mlbridge.Result{}, err)
					return
				}
				if !yield(mlbridge.RawResult(chunk), nil) {
					x.control(ctlCancel, "")
					return
				}
				// Grant credit back in batches of half a window: one control message per
				// window/2 chunks, and the node never waits while we keep up.
				if used++; used >= max(r.opt.Window/2, 1) {
					x.control(ctlCredit, strconv.Itoa(used))
					used = 0
				}
			case kindEnd:
				return
			default:
				_, err := r.result(ctx, m)
				yield(mlbridge.Result{}, err)
				return
			}
		}
	}
}

// defs runs a definitions action on a node.
func (r *Remote) defs(ctx context.Context, action string, q *defsReq, idempotent bool) ([]byte, error) {
	var body []byte
	if q != nil {
		var err error
		if body, err = msgpack.Marshal(q); err != nil {
			return nil, err
		}
	}
	return r.roundTrip(ctx, r.subj.defs, action, body, mlbridge.CallSettings{Idempotent: idempotent})
}

// Create implements mlbridge.Adapter (the node's store keeps the definition; see
// docs/DISTRIBUTED.md for sharing one store between nodes).
func (r *Remote) Create(ctx context.Context, d store.Definition) (store.Definition, error) {
	raw, err := r.defs(ctx, "create", &defsReq{Def: &d, IfAbsent: d.IfAbsent, IfVersion: d.IfVersion}, false)
	if err != nil {
		return d, err
	}
	var out store.Definition
	return out, msgpack.Unmarshal(raw, &out)
}

// Execute implements mlbridge.Adapter.
func (r *Remote) Execute(ctx context.Context, id string, inputs map[string]any) (mlbridge.Result, error) {
	raw, err := r.defs(ctx, "execute", &defsReq{ID: id, Inputs: inputs}, false)
	return mlbridge.RawResult(raw), err
}

// Describe implements mlbridge.Adapter.
func (r *Remote) Describe(ctx context.Context, id string) (map[string]any, error) {
	return mlbridge.Decode[map[string]any](r.defsResult(ctx, "describe", &defsReq{ID: id}))
}

// Get implements mlbridge.Adapter.
func (r *Remote) Get(ctx context.Context, id string) (store.Definition, error) {
	raw, err := r.defs(ctx, "get", &defsReq{ID: id}, true)
	var d store.Definition
	if err != nil {
		return d, err
	}
	return d, msgpack.Unmarshal(raw, &d)
}

// List implements mlbridge.Adapter.
func (r *Remote) List(ctx context.Context, kind string) ([]store.Definition, error) {
	raw, err := r.defs(ctx, "list", &defsReq{Kind: kind}, true)
	if err != nil {
		return nil, err
	}
	var ds []store.Definition
	return ds, msgpack.Unmarshal(raw, &ds)
}

// Delete implements mlbridge.Adapter.
func (r *Remote) Delete(ctx context.Context, id string) error {
	_, err := r.defs(ctx, "delete", &defsReq{ID: id}, false)
	return err
}

// Health implements mlbridge.Adapter: nil when a node of the bridge reports its workers
// ready (ErrUnavailable when no node answers).
func (r *Remote) Health(ctx context.Context) error {
	_, err := r.defs(ctx, "health", nil, true)
	return err
}

// Stats implements mlbridge.Adapter: the statistics of whichever node answers (within 2s);
// a Remote has no pool of its own.
func (r *Remote) Stats() mlbridge.PoolStats {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var st mlbridge.PoolStats
	raw, err := r.defs(ctx, "stats", nil, true)
	if err == nil {
		err = msgpack.Unmarshal(raw, &st)
	}
	if err != nil {
		return mlbridge.PoolStats{Error: err.Error()}
	}
	return st
}

func (r *Remote) defsResult(ctx context.Context, action string, q *defsReq) (mlbridge.Result, error) {
	raw, err := r.defs(ctx, action, q, true)
	return mlbridge.RawResult(raw), err
}
