package durable_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// TestAnUndecodableHistoryFailsThatInstanceClearlyWhileOthersRun damages
// the stored history of one waiting instance (garbage where its first
// events were) and restarts: that instance is Failed with a
// CorruptHistory failure that says what is wrong, a raise to it is refused
// as to any finished instance (not an internal error), and another
// instance of the same partition receives its event and completes.
func TestAnUndecodableHistoryFailsThatInstanceClearlyWhileOthersRun(t *testing.T) {
	dir := t.TempDir()
	register := func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Wait", func(ctx *orchestration.Context) (any, error) {
			return orchestration.Await[string](ctx.WaitForExternalEvent("go"))
		}))
	}
	rt := open(t, durable.Options{Dir: dir, Partitions: 1}, register)
	ctx := waitCtx(t)
	for _, id := range []string{"damaged", "healthy"} {
		if _, err := rt.Client().Start(ctx, "Wait", nil, durable.WithInstanceID(id)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both waiting", func() bool {
		for _, id := range []string{"damaged", "healthy"} {
			if st, err := rt.Client().Status(ctx, id); err != nil || st.RuntimeStatus != durable.StatusRunning {
				return false
			}
		}
		return true
	})
	must(rt.Close())

	hub, err := persistence.Open(persistence.Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p := hub.Partition(0)
	rec, err := p.LoadInstance("damaged")
	if err != nil {
		t.Fatal(err)
	}
	b := &persistence.Batch{}
	b.AppendHistory("damaged", rec.Generation, 0, [][]byte{{0xff, 0x00, 0x13, 0x37}})
	must(p.Commit(context.Background(), b))
	must(hub.Close())

	rt = open(t, durable.Options{Dir: dir}, register)
	c := rt.Client()
	err = c.RaiseEvent(ctx, "damaged", "go", "x")
	if err != nil && !errors.Is(err, durable.ErrInstanceCompleted) {
		t.Fatalf("raise to the damaged instance: %v, want nil or ErrInstanceCompleted", err)
	}
	st := waitForStatus(t, rt, "damaged", durable.StatusFailed)
	if st.Failure == nil || st.Failure.ErrorType != "CorruptHistory" || !strings.Contains(st.Failure.Message, "cannot be decoded") {
		t.Fatalf("failure %+v", st.Failure)
	}
	if err := c.RaiseEvent(ctx, "damaged", "go", "x"); !errors.Is(err, durable.ErrInstanceCompleted) {
		t.Fatalf("raise to the failed damaged instance: %v, want ErrInstanceCompleted", err)
	}
	if err := c.Rewind(ctx, "damaged", "try"); !errors.Is(err, durable.ErrInvalidInput) || !strings.Contains(err.Error(), "cannot be decoded") {
		t.Fatalf("rewind of the damaged instance: %v, want ErrInvalidInput saying why", err)
	}
	must(c.Purge(ctx, "damaged"))
	must(c.RaiseEvent(ctx, "healthy", "go", "fine"))
	if st := waitForStatus(t, rt, "healthy", durable.StatusCompleted); string(st.Output) != `"fine"` {
		t.Fatalf("healthy: %s", st.Output)
	}
}
