//go:build !darwin

package worker

// PreloadOff says why Preload is not used on this system ("" where it is); see
// preload_darwin.go.
const PreloadOff = ""
