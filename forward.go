package mlbridge

import "context"

// Helpers for Adapters that run calls somewhere else (mlnats's remote adapter): they receive
// results already in msgpack form, complete futures from their own goroutines, and forward
// the caller's call options.

// RawResult wraps a msgpack-encoded value as a Result, without decoding it.
func RawResult(raw []byte) Result { return Result{raw: raw} }

// NewFuture returns a pending Future and the function that completes it (call it once).
// cancel, if not nil, is what Future.Cancel calls.
func NewFuture(cancel context.CancelFunc) (*Future, func(Result, error)) {
	f := newAsyncFuture()
	f.cancel = cancel
	return f, f.complete
}

// CallSettings is what a list of CallOptions asks for.
type CallSettings struct {
	Idempotent bool
	Uses       []string
}

// SettingsOf reads opts, so that an Adapter forwarding a call can pass them on.
func SettingsOf(opts ...CallOption) CallSettings {
	o := collect(opts)
	return CallSettings{Idempotent: o.idempotent, Uses: o.uses}
}

// CallOptions turns settings back into options.
func (s CallSettings) CallOptions() []CallOption {
	var out []CallOption
	if s.Idempotent {
		out = append(out, Idempotent())
	}
	if len(s.Uses) > 0 {
		out = append(out, Uses(s.Uses...))
	}
	return out
}
