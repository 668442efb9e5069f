package store

import (
	"errors"
	"fmt"
)

// ErrCorrupt matches (errors.Is) every error about a damaged store file: see CorruptError.
var ErrCorrupt = errors.New("store: damaged store file")

// CorruptError says which store file is damaged and how. It matches ErrCorrupt.
//
// What to do: Recover (or `mlbridge store recover --path FILE`) copies every readable
// definition into a new file and keeps the damaged one beside it; docs/STORE.md says what can be
// lost.
type CorruptError struct {
	Path   string
	Reason string
	Err    error // the underlying error, if any (a bbolt error, a msgpack error)
}

func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("store: %s is damaged: %s", e.Path, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + fmt.Sprintf(" (to recover: mlbridge store recover --path %s)", e.Path)
}

func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
func (e *CorruptError) Unwrap() error        { return e.Err }

func corrupt(path, reason string, err error) error {
	return &CorruptError{Path: path, Reason: reason, Err: err}
}
