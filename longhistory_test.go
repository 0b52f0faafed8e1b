package durable_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// longChainTurns is more turns (history keys) than one Badger transaction
// can delete at the default sizes (about 25k entries).
const longChainTurns = 30000

// registerLong registers "Long": longChainTurns sequential activities, then
// continue-as-new if its input is "again", else done.
func registerLong(rt *durable.Runtime) {
	must(rt.RegisterOrchestrator("Long", func(ctx *orchestration.Context) (any, error) {
		var mode string
		_ = ctx.Input(&mode)
		switch mode {
		case "short":
			return "done", nil
		case "warm":
			return "done", ctx.CallActivity("Nop", nil).Await(nil)
		}
		for i := 0; i < longChainTurns; i++ {
			if err := ctx.CallActivity("Nop", nil).Await(nil); err != nil {
				return nil, err
			}
		}
		if mode == "again" {
			return nil, ctx.ContinueAsNew("short")
		}
		return "done", nil
	}))
	must(rt.RegisterActivity("Nop", func(context.Context) error { return nil }))
}

func skipLongUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("30,000 sequential activities take minutes under -race")
	}
}

// Continuing as new after a history longer than one transaction can delete
// must not wedge the instance; the old history leaves the disk afterwards.
func TestLongHistoryContinuesAsNewAndLeavesTheDisk(t *testing.T) {
	skipLongUnderRace(t)
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir, NoSync: true, IdleTimeout: time.Hour}, registerLong)
	c := rt.Client()
	ctx := waitCtx(t)
	// Warm up: the first instance and activity make protoactor's guardians
	// of all instances and of all activities.
	warm, err := c.Start(ctx, "Long", "warm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForCompletion(ctx, warm); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	base := rt.Stats().Actors // a count read too early only makes the check laxer
	id, err := c.Start(ctx, "Long", "again")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.WaitForCompletion(ctx, id)
	if err != nil || st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != `"done"` {
		t.Fatalf("%+v %v", st, err)
	}
	events, err := c.History(ctx, id, durable.AllExecutions())
	if err != nil || len(events) > 10 {
		t.Fatalf("history after continue-as-new: %d events, %v", len(events), err)
	}
	// A finished instance passivates once idle, and it is not idle while it
	// still removes the dropped history (in bounded transactions).
	waitFor(t, "the instance's actor to finish and passivate", func() bool { return rt.Stats().Actors <= base })
	must(rt.Close())
	hub, err := persistence.Open(persistence.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	first, err := hub.Partition(hub.PartitionOf(id)).LoadHistory(id, 1)
	if err != nil || len(first) != 0 {
		t.Fatalf("the first execution's history is still on disk: %d events, %v", len(first), err)
	}
}

// Purging works whatever the history's length.
func TestLongHistoryCanBePurged(t *testing.T) {
	skipLongUnderRace(t)
	rt := open(t, durable.Options{NoSync: true}, registerLong)
	c := rt.Client()
	ctx := waitCtx(t)
	id, err := c.Start(ctx, "Long", "once")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.WaitForCompletion(ctx, id); err != nil || st.RuntimeStatus != durable.StatusCompleted {
		t.Fatalf("%+v %v", st, err)
	}
	if err := c.Purge(ctx, id); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if _, err := c.Status(ctx, id); !errors.Is(err, durable.ErrInstanceNotFound) {
		t.Fatalf("status after purge: %v", err)
	}
}
