package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

func TestFanOutSumsAllResults(t *testing.T) {
	rt, err := durable.Open(durable.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := Register(rt); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const n = 200
	start := time.Now()
	id, err := rt.Client().Start(ctx, "FanOut", Input{N: n, MaxDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st, err := rt.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := st.DecodeOutput(&res); err != nil {
		t.Fatalf("%s %v %+v", st.RuntimeStatus, err, st.Failure)
	}
	if want := n * (n + 1) * (2*n + 1) / 6; res.Sum != want || res.N != n {
		t.Fatalf("got %+v, want sum %d", res, want)
	}
	// 200 activities of up to 50 ms each: about 5 s in sequence, well
	// under 1 s in parallel.
	if took := time.Since(start); took > time.Second {
		t.Fatalf("fan-out took %v: the activities did not run in parallel", took)
	}

	// Bad input fails the instance with the orchestrator's error.
	id, _ = rt.Client().Start(ctx, "FanOut", Input{N: 0})
	st, err = rt.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.RuntimeStatus != durable.StatusFailed || !strings.Contains(st.Failure.Error(), "at least 1") {
		t.Fatalf("%s %+v", st.RuntimeStatus, st.Failure)
	}
}

func TestRunPrintsTheSum(t *testing.T) {
	var out bytes.Buffer
	if err := run(durable.Options{}, Input{N: 10, MaxDelay: 20 * time.Millisecond}, &out); err != nil {
		t.Fatal(err)
	}
	if want := "sum of squares 1..10 = 385"; !strings.Contains(out.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, out.String())
	}
}
