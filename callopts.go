package mlbridge

// CallOption adjusts one call.
type CallOption func(*callOptions)

type callOptions struct {
	idempotent bool
	uses       []string
}

// Idempotent marks a call safe to run twice: if its worker dies mid-call, a pool retries it
// once on another worker. Calls are never retried without it.
func Idempotent() CallOption { return func(o *callOptions) { o.idempotent = true } }

// Uses names resources (store definitions) the call needs; a pool makes sure the worker it
// picks has built them (at their current version) before sending the call.
func Uses(ids ...string) CallOption {
	return func(o *callOptions) { o.uses = append(o.uses, ids...) }
}

func collect(opts []CallOption) callOptions {
	var o callOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}
