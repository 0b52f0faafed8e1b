package durable_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// An instance keeps one entry in the pending-work index while any of its
// activities is open, however many are: recovery needs to know which
// instances to wake, and the woken instance finds its open tasks in its
// history. These tests stop the runtime while three activities of a
// fan-out are open, read the store, start it again and let the instance
// complete. The legacy case first rewrites the store the way builds before
// FlagPendingWork left it (one entry per open task, no flag).
func TestOpenActivitiesKeepOnePendingWorkEntryThatRecoveryWakesTheInstanceBy(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := "one entry"
		if legacy {
			name = "one entry per task, written by an earlier build"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var release atomic.Bool
			started := make(chan int, 16)
			register := func(rt *durable.Runtime) {
				must(rt.RegisterOrchestrator("Fan", func(ctx *orchestration.Context) (any, error) {
					tasks := make([]orchestration.Task, 3)
					for i := range tasks {
						tasks[i] = ctx.CallActivity("Slow", i)
					}
					sum := 0
					for _, task := range tasks {
						var n int
						if err := task.Await(&n); err != nil {
							return nil, err
						}
						sum += n
					}
					var last int
					if err := ctx.CallActivity("Slow", 3).Await(&last); err != nil {
						return nil, err
					}
					return sum + last, nil
				}))
				must(rt.RegisterActivity("Slow", func(ctx context.Context, n int) (int, error) {
					if !release.Load() {
						started <- n
						<-ctx.Done() // the runtime stops; its result is discarded
						return 0, ctx.Err()
					}
					return 10 * n, nil
				}))
			}
			const id = "fan"
			rt := open(t, durable.Options{Dir: dir, NoSync: true}, register)
			if _, err := rt.Client().Start(waitCtx(t), "Fan", nil, durable.WithInstanceID(id)); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				<-started
			}
			backlog, err := rt.Backlog()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(backlog.Tasks, id) {
				t.Fatalf("backlog tasks %v: %s, whose activities run, is missing", backlog.Tasks, id)
			}
			events, err := rt.Client().History(waitCtx(t), id)
			if err != nil {
				t.Fatal(err)
			}
			var scheduled []uint64
			for _, ev := range events {
				if ev.Type == history.TaskScheduled {
					scheduled = append(scheduled, uint64(ev.TaskID))
				}
			}
			must(rt.Close())

			hub, err := persistence.Open(persistence.Options{Dir: dir, NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			p := hub.Partition(hub.PartitionOf(id))
			entries, err := p.PendingActivities(id)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || len(scheduled) != 3 {
				t.Fatalf("%d activities open, %d pending-work entries %v: want 3 and 1", len(scheduled), len(entries), entries)
			}
			if legacy {
				rec, err := p.LoadInstance(id)
				if err != nil {
					t.Fatal(err)
				}
				if rec.Flags&persistence.FlagPendingWork == 0 {
					t.Fatalf("the record's flags %b lack FlagPendingWork", rec.Flags)
				}
				old := *rec
				old.Flags &^= persistence.FlagPendingWork
				b := &persistence.Batch{}
				b.PutInstanceOver(rec, &old)
				b.DeletePendingWork(id)
				for _, task := range scheduled {
					b.PutPendingActivity(id, task)
				}
				if err := p.Commit(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
			must(hub.Close())

			release.Store(true)
			rt = open(t, durable.Options{Dir: dir, NoSync: true}, register)
			st, err := rt.Client().WaitForCompletion(waitCtx(t), id)
			if err != nil {
				t.Fatal(err)
			}
			if st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != "60" {
				t.Fatalf("%s is %s with output %s (%+v), want Completed with 60", id, st.RuntimeStatus, st.Output, st.Failure)
			}
			noPendingWork(t, rt, dir, id)
		})
	}
}
