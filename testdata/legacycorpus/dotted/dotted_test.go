package dotted

import (
	"context"
	"testing"

	"example.com/legacycorpus/internal/dspy"
	"example.com/legacycorpus/internal/fixture"
)

func TestSummarize(t *testing.T) {
	python := fixture.RequirePython(t)
	var log dspy.Log
	if err := Summarize(context.Background(), python, []string{"a", "b"}, &log); err != nil {
		t.Fatal(err)
	}
	want := "dotted: Predict \"text -> summary\" one line\n" +
		"dotted: \"a\" -> summary 1 ok\n" +
		"dotted: \"b\" -> summary 2 ok\n" +
		"dotted: no input: invalid_argument+remote:invalid_argument\n"
	if got := log.String(); got != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
}
