package tagged

import (
	"context"
	"strings"
	"testing"

	"example.com/legacycorpus/internal/dspy"
	"example.com/legacycorpus/internal/fixture"
)

func TestTranscript(t *testing.T) {
	python := fixture.RequirePython(t)
	var log dspy.Log
	if err := Transcript(context.Background(), python, &log); err != nil {
		t.Fatal(err)
	}
	want := "tagged: off"
	if enabled {
		want = `tagged: on -> "positive" ok`
	}
	if got := strings.TrimSpace(log.String()); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
