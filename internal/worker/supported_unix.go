//go:build unix

package worker

// supported reports whether workers can run on this system: on Unix they can.
func supported() error { return nil }
