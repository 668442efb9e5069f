package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// `status --json` checks that the answer is a node's status before printing it: a web page
// on the port was printed as is with exit code 0, where `status` without --json refused it.
func TestStatusJSONRefusesWhatIsNotAStatus(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>a dashboard</html>\n"))
	}))
	defer page.Close()
	for _, args := range [][]string{{"status", "--addr", page.URL, "--json"}, {"status", "--addr", page.URL}} {
		out, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "not an mlbridge node's status") || strings.Contains(out, "dashboard") {
			t.Errorf("mlbridge %s: out %q, err %v", strings.Join(args, " "), out, err)
		}
	}
}
