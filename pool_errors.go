package mlbridge

import (
	"errors"
	"sync"
	"time"
	"unicode/utf8"
)

// CallError is one failed call, as PoolStats.RecentErrors reports it.
type CallError struct {
	Time     time.Time `json:"time"`
	Op       string    `json:"op"`
	Category string    `json:"category"`       // a RemoteError's category, else the Go-side outcome (timeout, overloaded, ...)
	Type     string    `json:"type,omitempty"` // a RemoteError's Python exception class ("ValueError"); empty for a Go-side failure
	Message  string    `json:"message"`        // at most maxErrorMessage bytes
}

const (
	recentErrors    = 20  // failed calls a pool remembers
	maxErrorMessage = 240 // bytes of a message kept: enough to recognise it, not a traceback
)

// errorRing keeps the latest failed calls of a pool: bounded, so a storm of errors costs a
// fixed amount of memory, and locked only on failures.
type errorRing struct {
	mu   sync.Mutex
	buf  [recentErrors]CallError
	next int // where the next error goes
	n    int // how many are held
}

func (r *errorRing) add(op string, err error) {
	e := CallError{Time: time.Now().UTC(), Op: op, Category: categoryOf(err), Message: truncate(err.Error(), maxErrorMessage)}
	var re *RemoteError
	if errors.As(err, &re) {
		e.Type = re.Type
	}
	r.mu.Lock()
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
	r.mu.Unlock()
}

// snapshot returns the held errors, newest first.
func (r *errorRing) snapshot() []CallError {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]CallError, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

func categoryOf(err error) string {
	var re *RemoteError
	if errors.As(err, &re) && re.Category != "" {
		return re.Category
	}
	return outcomeNames[outcomeOf(err)]
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
