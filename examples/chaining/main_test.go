package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

func startRuntime(t *testing.T) *durable.Runtime {
	t.Helper()
	rt, err := durable.Open(durable.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	if err := Register(rt); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestChainPassesEachOutputToTheNextStep(t *testing.T) {
	rt := startRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := rt.Client().Start(ctx, "Chain", "To be, or not to be!")
	if err != nil {
		t.Fatal(err)
	}
	st, err := rt.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var report string
	if err := st.DecodeOutput(&report); err != nil {
		t.Fatalf("%s: %v %+v", st.RuntimeStatus, err, st.Failure)
	}
	if want := "6 words, 4 distinct: be×2 to×2 not×1 or×1"; report != want {
		t.Fatalf("got %q, want %q", report, want)
	}
}

func TestFailedStepFailsTheChain(t *testing.T) {
	rt := startRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, _ := rt.Client().Start(ctx, "Chain", "?!")
	st, err := rt.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.RuntimeStatus != durable.StatusFailed || st.Failure == nil || !strings.Contains(st.Failure.Error(), "no words") {
		t.Fatalf("%s %+v", st.RuntimeStatus, st.Failure)
	}
}

func TestRunPrintsHistoryAndReport(t *testing.T) {
	var out bytes.Buffer
	if err := run(durable.Options{}, defaultText, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TaskScheduled", "Normalize", "CountWords", "status: Completed", "output: 15 words, 10 distinct: the×4"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
