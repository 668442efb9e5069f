package testenv

import "testing"

var natscli tool

// NATSCLI builds the NATS CLI (github.com/nats-io/natscli/nats) at the version tools/go.mod
// pins, offline, once per tools/go.sum (about a minute the first time), and returns its path.
func NATSCLI(t testing.TB) string {
	t.Helper()
	return natscli.path(t, "nats", "github.com/nats-io/natscli/nats")
}
