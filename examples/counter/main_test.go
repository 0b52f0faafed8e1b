package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

func TestEverySignalOfTheBurstIsAppliedAndTheOrchestrationSeesIt(t *testing.T) {
	var out bytes.Buffer
	s := Settings{Key: "k", Signals: 500, Clients: 16, Call: 7}
	rep, err := run(durable.Options{}, s, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	want := 500 * 501 / 2
	if rep.Before != 0 || rep.Burst != want || rep.Called != want+7 || rep.Final != want+7 {
		t.Fatalf("%+v\n%s", rep, out.String())
	}
	if !strings.Contains(out.String(), "every signal was applied exactly once") {
		t.Fatal(out.String())
	}
}

// On disk, the count of a run is there at the next: the second run finds
// it, resets it, and counts again from 0.
func TestTheCountSurvivesARestartAndResetStartsOver(t *testing.T) {
	dir := t.TempDir()
	s := Settings{Key: "persisted", Signals: 100, Clients: 8, Call: 1}
	first, err := run(durable.Options{Dir: dir, NoSync: true}, s, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := run(durable.Options{Dir: dir, NoSync: true}, s, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Before != first.Final || second.Final != first.Final {
		t.Fatalf("first %+v, second %+v", first, second)
	}
}

func TestOperationsByName(t *testing.T) {
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
	c := rt.Client()
	for _, op := range []struct {
		name string
		arg  any
	}{{"add", 5}, {"Add", 4}, {"reset", nil}, {"ADD", 3}} {
		if err := c.SignalEntity(ctx, CounterID("ops"), op.name, op.arg); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := ReadCount(ctx, c, "ops"); err != nil || n != 3 {
		t.Fatalf("count %d %v", n, err)
	}
	if n, err := ReadCount(ctx, c, "never-signalled"); err != nil || n != 0 {
		t.Fatalf("unknown counter: %d %v", n, err)
	}
}
