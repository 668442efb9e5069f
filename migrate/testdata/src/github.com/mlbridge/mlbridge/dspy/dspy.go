// Package dspy is a stand-in with the names of the real package, for the analyzer's tests.
package dspy

type LMConfig struct{ Provider string }
type ProgramOption func(map[string]any)
type ProgramInfo struct{ Module string }
type FieldInfo struct{ Name string }

const Bridge = "mlbridge_worker.frameworks.dspy_bridge:DSPyBridge"

func WithModule(m string) ProgramOption { return nil }
