// Package dspy is this application's own record of what its DSPy programs did: a log of
// results and of how calls failed. It shares its name with mlbridge's dspy package, as an
// application's packages do.
package dspy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mlbridge/mlbridge"
)

// Log collects transcript lines.
type Log struct{ lines []string }

// Add appends one line.
func (l *Log) Add(format string, args ...any) {
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// String is the transcript, a line each.
func (l *Log) String() string { return strings.Join(l.lines, "\n") + "\n" }

// Outcome names how err failed, by errors.Is and errors.As only, so that it is the same
// whichever API produced the error.
func Outcome(err error) string {
	if err == nil {
		return "ok"
	}
	var kinds []string
	for _, k := range []struct {
		name   string
		target error
	}{
		{"not_found", mlbridge.ErrNotFound},
		{"invalid_argument", mlbridge.ErrInvalidArgument},
		{"invalid_configuration", mlbridge.ErrInvalidConfiguration},
		{"closed", mlbridge.ErrClosed},
		{"cancelled", mlbridge.ErrCancelled},
		{"timeout", mlbridge.ErrTimeout},
		{"context_canceled", context.Canceled},
	} {
		if errors.Is(err, k.target) {
			kinds = append(kinds, k.name)
		}
	}
	var remote *mlbridge.RemoteError
	if errors.As(err, &remote) {
		kinds = append(kinds, "remote:"+remote.Category)
	}
	var sig *mlbridge.SignatureError
	if errors.As(err, &sig) {
		kinds = append(kinds, "signature")
	}
	if len(kinds) == 0 {
		return "other"
	}
	return strings.Join(kinds, "+")
}
