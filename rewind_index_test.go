package durable_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// A rewind writes the recovery indexes of the tasks its cut history leaves
// open. An index entry that nothing deletes makes recovery wake the
// instance on every start, forever; these tests fail an instance while
// entity work and a sub-orchestration are open, rewind it, let it
// complete, and read the store for entries left behind.

// rewindWorld registers what the tests need: an entity "Gate" whose
// operations answer "open"; "Holder", which locks a gate until it receives
// "release"; "Child", which waits for "go"; and the activity "Flaky", which
// fails until fixed is set.
func rewindWorld(fixed *atomic.Bool, victim orchestration.Orchestrator) func(rt *durable.Runtime) {
	return func(rt *durable.Runtime) {
		must(rt.RegisterEntity("Gate", func(ctx *orchestration.EntityContext) error { return ctx.Return("open") }))
		must(rt.RegisterOrchestrator("Holder", func(ctx *orchestration.Context) (any, error) {
			var key string
			if err := ctx.Input(&key); err != nil {
				return nil, err
			}
			if _, err := ctx.LockEntities(durable.EntityID{Name: "Gate", Key: key}); err != nil {
				return nil, err
			}
			return nil, ctx.WaitForExternalEvent("release").Await(nil)
		}))
		must(rt.RegisterOrchestrator("Child", func(ctx *orchestration.Context) (any, error) {
			return "child", ctx.WaitForExternalEvent("go").Await(nil)
		}))
		must(rt.RegisterOrchestrator("Victim", victim))
		must(rt.RegisterActivity("Flaky", func(context.Context) (string, error) {
			if !fixed.Load() {
				return "", errors.New("flaky is broken")
			}
			return "fixed", nil
		}))
	}
}

// holdGate starts a Holder of gate key and waits until it holds the lock,
// so that operations and lock requests on the gate queue behind it.
func holdGate(t *testing.T, rt *durable.Runtime, key string) string {
	t.Helper()
	id, err := rt.Client().Start(waitCtx(t), "Holder", key)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the holder to hold the gate", func() bool { return hasEvent(t, rt, id, history.EntityLockGranted) })
	return id
}

func waitForStatus(t *testing.T, rt *durable.Runtime, id string, want durable.RuntimeStatus) *durable.Status {
	t.Helper()
	st := complete(t, rt, id)
	if st.RuntimeStatus != want {
		t.Fatalf("%s is %s (%s %+v), want %s", id, st.RuntimeStatus, st.Output, st.Failure, want)
	}
	return st
}

// noPendingWork closes rt, opens its store and fails if any of ids still
// has an entry in the pending-work index.
func noPendingWork(t *testing.T, rt *durable.Runtime, dir string, ids ...string) {
	t.Helper()
	must(rt.Close())
	hub, err := persistence.Open(persistence.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	for _, id := range ids {
		tasks, err := hub.Partition(hub.PartitionOf(id)).PendingActivities(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) > 0 {
			t.Errorf("%s is complete, but its tasks %v are still in the pending-work index: recovery would wake it on every start", id, tasks)
		}
	}
}

// The victim fails while its call to a locked gate waits at the entity and
// its sub-orchestration runs. After the rewind the call is answered and
// the child completes; neither may leave an index entry behind.
func TestRewindLeavesNoIndexEntryForAnEntityCallOrSubOrchestration(t *testing.T) {
	dir := t.TempDir()
	var fixed atomic.Bool
	const childID = "rewind-index-child"
	rt := open(t, durable.Options{Dir: dir, NoSync: true}, rewindWorld(&fixed, func(ctx *orchestration.Context) (any, error) {
		act := ctx.CallActivity("Flaky", nil)
		call := ctx.CallEntity(durable.EntityID{Name: "Gate", Key: "call"}, "pass", nil)
		sub := ctx.CallSubOrchestrator("Child", nil, orchestration.WithInstanceID(childID))
		if err := act.Await(nil); err != nil {
			return nil, err
		}
		var gate, child string
		if err := call.Await(&gate); err != nil {
			return nil, err
		}
		if err := sub.Await(&child); err != nil {
			return nil, err
		}
		return gate + " " + child, nil
	}))
	ctx := waitCtx(t)
	c := rt.Client()
	holder := holdGate(t, rt, "call")
	victim, err := c.Start(ctx, "Victim", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, rt, victim, durable.StatusFailed)

	fixed.Store(true)
	must(c.Rewind(ctx, victim, "fixed"))
	must(c.RaiseEvent(ctx, holder, "release", nil)) // the gate answers the call
	waitForStatus(t, rt, holder, durable.StatusCompleted)
	waitFor(t, "the child to be started again", func() bool {
		st, err := c.Status(ctx, childID)
		return err == nil && st.RuntimeStatus == durable.StatusRunning
	})
	must(c.RaiseEvent(ctx, childID, "go", nil))
	if st := waitForStatus(t, rt, victim, durable.StatusCompleted); string(st.Output) != `"open child"` {
		t.Fatalf("output %s", st.Output)
	}
	noPendingWork(t, rt, dir, victim, holder, childID)
}

// A lock request cannot be open when its orchestration fails (the code
// waits in LockEntities and cannot return), but a grant that arrives after
// the failed task is cut off by the rewind: the rewound history then has
// the request open again. Nothing will answer it a second time (the grant
// was delivered and acknowledged), so the rewind keeps the grant, and the
// request needs no index entry.
func TestRewindKeepsALockGrantedAfterTheFailedTask(t *testing.T) {
	dir := t.TempDir()
	var fixed atomic.Bool
	rt := open(t, durable.Options{Dir: dir, NoSync: true}, rewindWorld(&fixed, func(ctx *orchestration.Context) (any, error) {
		act := ctx.CallActivity("Flaky", nil)
		lock, err := ctx.LockEntities(durable.EntityID{Name: "Gate", Key: "lock"})
		if err != nil {
			return nil, err
		}
		defer lock.Release()
		var s string
		return s, act.Await(&s)
	}))
	ctx := waitCtx(t)
	c := rt.Client()
	holder := holdGate(t, rt, "lock")
	victim, err := c.Start(ctx, "Victim", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The activity fails while the victim waits for the gate.
	waitFor(t, "the activity to fail", func() bool { return hasEvent(t, rt, victim, history.TaskFailed) })
	must(c.RaiseEvent(ctx, holder, "release", nil))
	waitForStatus(t, rt, victim, durable.StatusFailed)

	fixed.Store(true)
	must(c.Rewind(ctx, victim, "fixed"))
	if st := waitForStatus(t, rt, victim, durable.StatusCompleted); string(st.Output) != `"fixed"` {
		t.Fatalf("output %s", st.Output)
	}
	noPendingWork(t, rt, dir, victim, holder)
}
