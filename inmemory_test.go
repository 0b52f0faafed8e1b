package durable_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// TestMaxActorsInMemoryPassivatesTheLeastRecentlyUsedIdleOnes starts more
// waiting instances and signals more entities than MaxActorsInMemory, with
// an IdleTimeout too long to matter: after each, the count in memory comes
// back to the bound; an instance busy with an activity is never passivated
// (its activity is not canceled); and every instance still completes when
// its event arrives, every entity keeps its state.
func TestMaxActorsInMemoryPassivatesTheLeastRecentlyUsedIdleOnes(t *testing.T) {
	const limit, instances, entities = 10, 40, 25
	release := make(chan struct{})
	var canceled atomic.Bool
	rt := open(t, durable.Options{Partitions: 2, MaxActorsInMemory: limit, IdleTimeout: time.Hour}, func(rt *durable.Runtime) {
		registerWaitAndCounter(rt)
		must(rt.RegisterOrchestrator("Busy", func(ctx *orchestration.Context) (any, error) {
			return orchestration.Await[string](ctx.CallActivity("Block", nil))
		}))
		must(rt.RegisterActivity("Block", func(ctx context.Context) (string, error) {
			select {
			case <-release:
				return "done", nil
			case <-ctx.Done():
				canceled.Store(true)
				return "", ctx.Err()
			}
		}))
	})
	c := rt.Client()
	ctx := waitCtx(t)
	if st := rt.NodeStats(); st.MaxInMemory != limit {
		t.Fatalf("MaxInMemory %d, want %d", st.MaxInMemory, limit)
	}
	settled := func(what string) {
		t.Helper()
		waitFor(t, what+": in memory back to the bound", func() bool { return rt.Stats().InMemory <= limit })
	}

	// The least recently used actor, but busy: it must stay.
	if _, err := c.Start(ctx, "Busy", nil, durable.WithInstanceID("busy")); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, instances)
	for i := range ids {
		ids[i] = fmt.Sprintf("wait-%d", i)
		if _, err := c.Start(ctx, "Wait", nil, durable.WithInstanceID(ids[i])); err != nil {
			t.Fatal(err)
		}
		settled(ids[i])
	}
	for i := 0; i < entities; i++ {
		must(c.SignalEntity(ctx, durable.EntityID{Name: "Counter", Key: fmt.Sprint(i)}, "Add", 1))
		settled(fmt.Sprint("entity ", i))
	}
	for i := 0; i < entities; i++ {
		waitFor(t, "entity applied", func() bool {
			s, err := c.ReadEntityState(ctx, durable.EntityID{Name: "Counter", Key: fmt.Sprint(i)})
			return err == nil && strings.Contains(string(s), `"Value":1`)
		})
	}
	close(release)
	if st := waitForStatus(t, rt, "busy", durable.StatusCompleted); string(st.Output) != `"done"` || canceled.Load() {
		t.Fatalf("busy instance: output %s, activity canceled %v", st.Output, canceled.Load())
	}
	for i, id := range ids {
		must(c.RaiseEvent(ctx, id, "go", fmt.Sprint(i)))
		if st := waitForStatus(t, rt, id, durable.StatusCompleted); string(st.Output) != fmt.Sprintf(`"%d"`, i) {
			t.Fatalf("%s: output %s", id, st.Output)
		}
	}
	for i := 0; i < entities; i++ {
		must(c.SignalEntity(ctx, durable.EntityID{Name: "Counter", Key: fmt.Sprint(i)}, "Add", 1))
	}
	for i := 0; i < entities; i++ {
		waitFor(t, "entity state kept across passivation", func() bool {
			s, err := c.ReadEntityState(ctx, durable.EntityID{Name: "Counter", Key: fmt.Sprint(i)})
			return err == nil && strings.Contains(string(s), `"Value":2`)
		})
	}
	settled("the end")
}

// TestANegativeMaxActorsInMemoryIsNoBound: only IdleTimeout passivates.
func TestANegativeMaxActorsInMemoryIsNoBound(t *testing.T) {
	rt := open(t, durable.Options{Partitions: 1, MaxActorsInMemory: -1, IdleTimeout: time.Hour}, registerWaitAndCounter)
	ctx := waitCtx(t)
	for i := 0; i < 20; i++ {
		if _, err := rt.Client().Start(ctx, "Wait", nil, durable.WithInstanceID(fmt.Sprint("w", i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := rt.NodeStats(); st.MaxInMemory != 0 || st.InMemory != 20 {
		t.Fatalf("in memory %d (bound %d), want 20 and no bound", st.InMemory, st.MaxInMemory)
	}
	if st := rt.NodeStats(); durable.DefaultMaxActorsInMemory != 100_000 || st.InMemory > durable.DefaultMaxActorsInMemory {
		t.Fatal("default changed")
	}
}
