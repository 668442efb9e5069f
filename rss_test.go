//go:build linux || darwin

package mlbridge

import (
	"os"
	"testing"
)

// processRSS reads a live process's resident size (/proc on Linux, ps on macOS) and fails for
// a process that does not exist, so the monitor never recycles on a bogus reading.
func TestProcessRSS(t *testing.T) {
	rss, err := processRSS(os.Getpid())
	if err != nil || rss < 1<<20 || rss > 1<<40 {
		t.Fatalf("RSS of this test process: %d, %v; want between 1 MiB and 1 TiB", rss, err)
	}
	if rss, err := processRSS(1 << 30); err == nil { // above every system's pid limit
		t.Fatalf("RSS of a missing process: %d, want an error", rss)
	}
}
