package tracing_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/metrics"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/tracing"
)

const traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func register(t *testing.T, rt *durable.Runtime) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rt.RegisterActivity("Hello", func(ctx context.Context, s string) (string, error) { return "Hello " + s, nil }))
	must(rt.RegisterOrchestrator("Child", func(ctx *orchestration.Context) (any, error) {
		return orchestration.Await[string](ctx.CallActivity("Hello", "child"))
	}))
	must(rt.RegisterOrchestrator("Parent", func(ctx *orchestration.Context) (any, error) {
		for _, c := range []string{"a", "b"} {
			if _, err := orchestration.Await[string](ctx.CallActivity("Hello", c)); err != nil {
				return nil, err
			}
		}
		if _, err := orchestration.Await[string](ctx.CallSubOrchestrator("Child", nil)); err != nil {
			return nil, err
		}
		return orchestration.Await[string](ctx.WaitForExternalEvent("Go"))
	}))
}

// open starts a runtime on dir whose spans go to a fresh recorder.
func open(t *testing.T, dir string) (*durable.Runtime, *tracetest.SpanRecorder) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	rt, err := durable.Open(durable.Options{Dir: dir, Observer: tracing.New(tp, metrics.New()), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	register(t, rt)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	return rt, sr
}

func TestSpansOfTurnsAndActivitiesJoinTheTraceGivenAtStartAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	rt, sr := open(t, dir)
	id, err := rt.Client().Start(ctx, "Parent", nil, durable.WithInstanceID("p1"), durable.WithTraceParent(traceParent))
	if err != nil {
		t.Fatal(err)
	}
	for done := false; !done; time.Sleep(5 * time.Millisecond) { // until the child has completed
		h, err := rt.Client().History(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range h {
			done = done || e.Type.String() == "SubOrchestrationInstanceCompleted"
		}
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	before := sr.Ended()

	// After a restart the instance's trace goes on.
	rt, sr2 := open(t, dir)
	defer rt.Close()
	if err := rt.Client().RaiseEvent(ctx, id, "Go", "ok"); err != nil {
		t.Fatal(err)
	}
	if st, err := rt.Client().WaitForCompletion(ctx, id); err != nil || st.RuntimeStatus != durable.StatusCompleted {
		t.Fatalf("p1: %v %v", st, err)
	}
	// An observer hears of a turn once the actor learns its commit is
	// durable, which may be just after the waiter was answered: wait for
	// the parent's last turn to be reported.
	var after []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		after = sr2.Ended()
		if slices.ContainsFunc(after, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "orchestration Parent" }) || time.Now().After(deadline) {
			break
		}
	}

	want, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	wantParent, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	count := map[string]int{}
	for _, s := range append(before, after...) {
		if s.SpanContext().TraceID() != want {
			t.Errorf("span %q in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), want)
		}
		if s.Parent().SpanID() != wantParent {
			t.Errorf("span %q has parent %s, want the caller's span %s", s.Name(), s.Parent().SpanID(), wantParent)
		}
		if !s.EndTime().After(s.StartTime()) && !s.EndTime().Equal(s.StartTime()) {
			t.Errorf("span %q ends before it starts", s.Name())
		}
		count[s.Name()]++
	}
	if count["activity Hello"] != 3 {
		t.Errorf("%d activity spans, want 3 (two of the parent, one of the child): %v", count["activity Hello"], count)
	}
	if count["orchestration Child"] < 2 || count["orchestration Parent"] < 4 {
		t.Errorf("turn spans %v: want the child's turns and the parent's", count)
	}
	last := 0
	for _, s := range after {
		if s.Name() == "orchestration Parent" {
			last++
		}
	}
	if last == 0 {
		t.Errorf("no span of the parent's turn after the restart: %v", count)
	}
}

func TestAnInstanceWithoutATraceParentGetsATraceOfItsOwn(t *testing.T) {
	rt, sr := open(t, "")
	defer rt.Close()
	ctx := t.Context()
	var ids []string
	for _, id := range []string{"c1", "c2"} {
		if _, err := rt.Client().Start(ctx, "Child", nil, durable.WithInstanceID(id), durable.WithTraceParent("not a traceparent")); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Client().WaitForCompletion(ctx, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	traces := map[string]map[trace.TraceID]bool{}
	for _, s := range sr.Ended() {
		var inst string
		for _, a := range s.Attributes() {
			if a.Key == "durable.instance_id" {
				inst = a.Value.AsString()
			}
		}
		if traces[inst] == nil {
			traces[inst] = map[trace.TraceID]bool{}
		}
		traces[inst][s.SpanContext().TraceID()] = true
	}
	for _, id := range ids {
		if len(traces[id]) != 1 {
			t.Errorf("spans of %s in %d traces, want 1", id, len(traces[id]))
		}
	}
	for tid := range traces["c1"] {
		if traces["c2"][tid] {
			t.Errorf("c1 and c2 share trace %s", tid)
		}
	}
}

func TestValidTraceParent(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{traceParent, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", false},
		{"", false},
	} {
		if got := durable.ValidTraceParent(c.s); got != c.want {
			t.Errorf("ValidTraceParent(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}
