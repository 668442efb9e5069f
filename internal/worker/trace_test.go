package worker

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// A span context in ctx travels as the W3C fields; none costs nothing.
func TestTraceOf(t *testing.T) {
	if got := traceOf(context.Background()); got.Parent != "" || got.State != "" {
		t.Fatalf("untraced ctx: %+v", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = traceOf(context.Background()) }); n != 0 {
		t.Fatalf("untraced ctx: %v allocations", n)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, _ := trace.ParseTraceState("rojo=00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
	got := traceOf(trace.ContextWithSpanContext(context.Background(), sc))
	if got.Parent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" || got.State != "rojo=00f067aa0ba902b7" {
		t.Fatalf("traced ctx: %+v", got)
	}
}

// OTEL_* reaches workers: they export their spans where the host's settings say.
func TestEnvPassesOTel(t *testing.T) {
	env := buildEnv([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "OTEL_SERVICE_NAME=app", "SECRET=x"}, nil, nil)
	for _, want := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "OTEL_SERVICE_NAME=app"} {
		if !slices.Contains(env, want) {
			t.Errorf("%s not passed: %q", want, env)
		}
	}
	if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "SECRET=") }) {
		t.Errorf("SECRET passed: %q", env)
	}
}

// A worker record made during a traced call carries its trace and span ids to slog.
func TestStderrRecordTraceIDs(t *testing.T) {
	input := recordMarker + `{"level":30,"logger":"app","msg":"inside","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}` + "\n" +
		rec(30, "app", "outside", "")
	c := newCapture()
	newStderrTail(20).run(strings.NewReader(input), slog.New(c))
	got := c.all()
	if len(got) != 2 {
		t.Fatalf("%d records", len(got))
	}
	if v := got[0].values("trace_id"); !slices.Equal(v, []string{"4bf92f3577b34da6a3ce929d0e0e4736"}) {
		t.Errorf("trace_id %q", v)
	}
	if v := got[0].values("span_id"); !slices.Equal(v, []string{"00f067aa0ba902b7"}) {
		t.Errorf("span_id %q", v)
	}
	if got[1].values("trace_id") != nil || got[1].values("span_id") != nil {
		t.Errorf("an untraced record has ids: %v", got[1])
	}
}
