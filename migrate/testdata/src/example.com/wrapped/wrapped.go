// Package wrapped exports wrappers that embed the legacy pool through an unexported alias:
// another package cannot name the field, but the legacy value's Client is promoted.
package wrapped

import "github.com/mlbridge/mlbridge/adapters"

type pool = adapters.PythonPoolV2

// Public embeds the legacy pool through an unexported field.
type Public struct {
	*pool
	Name string
}

// Shadowed has a Client of its own, which hides the promoted one.
type Shadowed struct {
	*pool
	Client int
}
