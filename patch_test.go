package durable_test

import (
	"context"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

// registerShipping registers the "Ship" orchestrator, which picks a carrier
// (an activity) and then waits for the "shipped" event. The patched code
// picks Express for new instances.
func registerShipping(patched bool) func(rt *durable.Runtime) {
	return func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Ship", func(ctx *orchestration.Context) (any, error) {
			carrier := "Standard"
			if patched && ctx.IsPatched("express") {
				carrier = "Express"
			}
			var picked string
			if err := ctx.CallActivity(carrier, nil).Await(&picked); err != nil {
				return nil, err
			}
			if err := ctx.WaitForExternalEvent("shipped").Await(nil); err != nil {
				return nil, err
			}
			return picked, nil
		}))
		must(rt.RegisterActivity("Standard", func(context.Context) (string, error) { return "standard", nil }))
		must(rt.RegisterActivity("Express", func(context.Context) (string, error) { return "express", nil }))
	}
}

func patchMarkers(t *testing.T, rt *durable.Runtime, id string) []string {
	t.Helper()
	events, err := rt.Client().History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ev := range events {
		if ev.Type == history.PatchMarker {
			names = append(names, ev.Name)
		}
	}
	return names
}

func TestPatchedCodeLetsOldInstancesFinishTheOldWayAndStartsNewOnesTheNewWay(t *testing.T) {
	dir := t.TempDir()
	ctx := waitCtx(t)
	rt := open(t, durable.Options{Dir: dir}, registerShipping(false))
	old, err := rt.Client().Start(ctx, "Ship", nil)
	must(err)
	waitFor(t, "the old instance to pick its carrier", func() bool { return hasEvent(t, rt, old, history.TaskCompleted) })
	must(rt.Close())

	// The new code: the old instance, replayed, stays on the old path; a new
	// one takes the new path. Both then wait across another restart, so
	// each is replayed by the new code, with and without its marker.
	rt2 := open(t, durable.Options{Dir: dir}, registerShipping(true))
	young, err := rt2.Client().Start(ctx, "Ship", nil)
	must(err)
	waitFor(t, "the new instance to pick its carrier", func() bool { return hasEvent(t, rt2, young, history.TaskCompleted) })
	must(rt2.Close())

	rt3 := open(t, durable.Options{Dir: dir}, registerShipping(true))
	c := rt3.Client()
	for _, id := range []string{old, young} {
		must(c.RaiseEvent(ctx, id, "shipped", nil))
	}
	if st := complete(t, rt3, old); st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != `"standard"` {
		t.Fatalf("old instance: %s %s %v", st.RuntimeStatus, st.Output, st.Failure)
	}
	if st := complete(t, rt3, young); st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != `"express"` {
		t.Fatalf("new instance: %s %s %v", st.RuntimeStatus, st.Output, st.Failure)
	}
	if got := patchMarkers(t, rt3, old); len(got) != 0 {
		t.Fatalf("the old instance recorded markers %v", got)
	}
	if got := patchMarkers(t, rt3, young); len(got) != 1 || got[0] != "express" {
		t.Fatalf("the new instance's markers: %v, want [express]", got)
	}
}
