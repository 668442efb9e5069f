//go:build unix && !linux

package shm

import "os"

const mapPopulate = 0 // Linux only

// newFile is a temporary file unlinked at once (macOS has no memfd): from then on it has no
// name, so it cannot outlive the last mapping or descriptor of it. (os opens it close-on-exec.)
func newFile() (*os.File, error) {
	f, err := os.CreateTemp("", "mlbridge-array-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
