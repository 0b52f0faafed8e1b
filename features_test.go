package durable_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

func statusOf(t *testing.T, rt *durable.Runtime, id string) *durable.Status {
	t.Helper()
	st, err := rt.Client().Status(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func hasEvent(t *testing.T, rt *durable.Runtime, id string, typ history.Type) bool {
	events, err := rt.Client().History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Type == typ {
			return true
		}
	}
	return false
}

func complete(t *testing.T, rt *durable.Runtime, id string) *durable.Status {
	t.Helper()
	st, err := rt.Client().WaitForCompletion(waitCtx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func registerTimer(d time.Duration) func(rt *durable.Runtime) {
	return func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Sleep", func(ctx *orchestration.Context) (any, error) {
			start := ctx.Now()
			if err := ctx.CreateTimer(d).Await(nil); err != nil {
				return nil, err
			}
			return ctx.Now().Sub(start) >= d, nil
		}))
	}
}

func TestDurableTimerFiresAfterARestart(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, registerTimer(300*time.Millisecond))
	id, err := rt.Client().Start(waitCtx(t), "Sleep", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "timer created", func() bool { return hasEvent(t, rt, id, history.TimerCreated) })
	must(rt.Close())
	rt2 := open(t, durable.Options{Dir: dir}, registerTimer(300*time.Millisecond))
	if st := complete(t, rt2, id); string(st.Output) != "true" {
		t.Fatalf("%s %s", st.RuntimeStatus, st.Output)
	}
}

func TestLateTimerFiresAtOnceOnStart(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, registerTimer(50*time.Millisecond))
	id, _ := rt.Client().Start(waitCtx(t), "Sleep", nil)
	waitFor(t, "timer created", func() bool { return hasEvent(t, rt, id, history.TimerCreated) })
	must(rt.Close())
	time.Sleep(150 * time.Millisecond) // the timer is now overdue
	rt2 := open(t, durable.Options{Dir: dir}, registerTimer(50*time.Millisecond))
	if st := complete(t, rt2, id); st.RuntimeStatus != durable.StatusCompleted {
		t.Fatalf("%s", st.RuntimeStatus)
	}
}

func TestWaitingInstancesPassivateAndHoldNoGoroutine(t *testing.T) {
	rt := open(t, durable.Options{IdleTimeout: 20 * time.Millisecond}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Wait", func(ctx *orchestration.Context) (any, error) {
			w := ctx.WhenAny(ctx.CreateTimer(time.Hour), ctx.WaitForExternalEvent("Go"))
			return nil, w.Await(nil)
		}))
	})
	ctx := waitCtx(t)
	before := runtime.NumGoroutine()
	const n = 300
	for i := 0; i < n; i++ {
		if _, err := rt.Client().Start(ctx, "Wait", nil, durable.WithInstanceID(fmt.Sprintf("w-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all waiting", func() bool {
		page, _ := rt.Client().List(ctx, durable.Query{Statuses: []durable.RuntimeStatus{durable.StatusRunning}, PageSize: 1000})
		return len(page.Instances) == n
	})
	waitFor(t, "passivation", func() bool { return runtime.NumGoroutine() < before+n/10 })
	// Each instance comes back for its event.
	for i := 0; i < n; i++ {
		if err := rt.Client().RaiseEvent(ctx, fmt.Sprintf("w-%d", i), "Go", nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if st := complete(t, rt, fmt.Sprintf("w-%d", i)); st.RuntimeStatus != durable.StatusCompleted {
			t.Fatalf("w-%d: %s", i, st.RuntimeStatus)
		}
	}
}

func registerApproval(rt *durable.Runtime) {
	must(rt.RegisterOrchestrator("Approval", func(ctx *orchestration.Context) (any, error) {
		var who string
		if err := ctx.WaitForExternalEvent("Approve").Await(&who); err != nil {
			return nil, err
		}
		var second string
		_ = ctx.WaitForExternalEvent("Approve").Await(&second)
		return who + "+" + second, nil
	}))
}

func TestExternalEventsAreBufferedInOrderAndSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, registerApproval)
	ctx := waitCtx(t)
	c := rt.Client()
	id, _ := c.Start(ctx, "Approval", nil)
	must(c.RaiseEvent(ctx, id, "approve", "alice")) // names are case-insensitive
	must(rt.Close())
	rt2 := open(t, durable.Options{Dir: dir}, registerApproval)
	must(rt2.Client().RaiseEvent(ctx, id, "Approve", "bob"))
	if st := complete(t, rt2, id); string(st.Output) != `"alice+bob"` {
		t.Fatalf("%s %s", st.RuntimeStatus, st.Output)
	}
	if err := rt2.Client().RaiseEvent(ctx, id, "Approve", "late"); !errors.Is(err, durable.ErrInstanceCompleted) {
		t.Fatalf("event to a completed instance: %v", err)
	}
	if err := rt2.Client().RaiseEvent(ctx, "nobody", "Approve", nil); !errors.Is(err, durable.ErrInstanceNotFound) {
		t.Fatalf("event to an unknown instance: %v", err)
	}
}

func TestFanOutOfTenThousandActivitiesCompletes(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("FanOut", func(ctx *orchestration.Context) (any, error) {
			var n int
			_ = ctx.Input(&n)
			tasks := make([]orchestration.Task, n)
			for i := range tasks {
				tasks[i] = ctx.CallActivity("Double", i)
			}
			if err := ctx.WhenAll(tasks...).Await(nil); err != nil {
				return nil, err
			}
			sum := 0
			for _, task := range tasks {
				v, _ := orchestration.Await[int](task)
				sum += v
			}
			return sum, nil
		}))
		must(rt.RegisterActivity("Double", func(_ context.Context, i int) (int, error) { return 2 * i, nil }))
	})
	const n = 10000
	start := time.Now()
	id, _ := rt.Client().Start(waitCtx(t), "FanOut", n)
	st := complete(t, rt, id)
	if want := fmt.Sprint(n * (n - 1)); string(st.Output) != want {
		t.Fatalf("%s %s, want %s", st.RuntimeStatus, st.Output, want)
	}
	t.Logf("fan-out of %d activities took %v", n, time.Since(start))
}

func registerParentChild(childGate chan struct{}) func(rt *durable.Runtime) {
	return func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Parent", func(ctx *orchestration.Context) (any, error) {
			a, err := orchestration.Await[string](ctx.CallSubOrchestrator("Child", "one"))
			if err != nil {
				return nil, err
			}
			err = ctx.CallSubOrchestrator("Child", "fail", orchestration.WithInstanceID(ctx.InstanceID()+"-failing")).Await(nil)
			var tf *orchestration.TaskFailedError
			if !errors.As(err, &tf) || !strings.Contains(tf.Failure.Message, "child says no") {
				return nil, fmt.Errorf("want the child's failure, got %v", err)
			}
			return a + " / " + tf.TaskName, nil
		}))
		must(rt.RegisterOrchestrator("Child", func(ctx *orchestration.Context) (any, error) {
			var in string
			_ = ctx.Input(&in)
			if in == "fail" {
				return nil, errors.New("child says no")
			}
			return orchestration.Await[string](ctx.CallActivity("Slow", in))
		}))
		must(rt.RegisterActivity("Slow", func(ctx context.Context, s string) (string, error) {
			if childGate != nil {
				select {
				case <-childGate:
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}
			return "child did " + s, nil
		}))
	}
}

func TestSubOrchestrationResultAndFailureReachTheParentAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	gate := make(chan struct{})
	rt := open(t, durable.Options{Dir: dir}, registerParentChild(gate))
	id, _ := rt.Client().Start(waitCtx(t), "Parent", nil)
	waitFor(t, "child scheduled", func() bool { return hasEvent(t, rt, id, history.SubOrchestrationCreated) })
	page, _ := rt.Client().List(waitCtx(t), durable.Query{InstanceIDPrefix: id + ":"})
	waitFor(t, "child running", func() bool {
		page, _ = rt.Client().List(waitCtx(t), durable.Query{InstanceIDPrefix: id + ":"})
		return len(page.Instances) == 1
	})
	close(gate)
	must(rt.Close())
	rt2 := open(t, durable.Options{Dir: dir}, registerParentChild(nil))
	st := complete(t, rt2, id)
	if st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != `"child did one / Child"` {
		t.Fatalf("%s %s %+v", st.RuntimeStatus, st.Output, st.Failure)
	}
	child := statusOf(t, rt2, page.Instances[0].InstanceID)
	if child.RuntimeStatus != durable.StatusCompleted || child.Name != "Child" {
		t.Fatalf("child %+v", child)
	}
}

func TestContinueAsNewRestartsWithFreshHistory(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Count", func(ctx *orchestration.Context) (any, error) {
			var n int
			_ = ctx.Input(&n)
			if err := ctx.CallActivity("Tick", n).Await(nil); err != nil {
				return nil, err
			}
			if n < 5 {
				return nil, ctx.ContinueAsNew(n + 1)
			}
			var extra string
			if err := ctx.WaitForExternalEvent("Extra").Await(&extra); err != nil {
				return nil, err
			}
			return fmt.Sprintf("%d %s", n, extra), nil
		}))
		must(rt.RegisterActivity("Tick", func(context.Context, int) error { return nil }))
	})
	ctx := waitCtx(t)
	id, _ := rt.Client().Start(ctx, "Count", 0)
	must(rt.Client().RaiseEvent(ctx, id, "Extra", "carried"))
	st := complete(t, rt, id)
	if string(st.Output) != `"5 carried"` || string(st.Input) != "5" {
		t.Fatalf("%s input %s output %s %+v", st.RuntimeStatus, st.Input, st.Output, st.Failure)
	}
	events, _ := rt.Client().History(ctx, id)
	if events[1].Type != history.ExecutionStarted || string(events[1].Payload) != "5" {
		t.Fatalf("history does not start with the last execution: %s %s", events[1].Type, events[1].Payload)
	}
}

func registerFlaky(failures int32, calls *atomic.Int32, interval time.Duration) func(rt *durable.Runtime) {
	return func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Retry", func(ctx *orchestration.Context) (any, error) {
			policy := orchestration.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: interval, BackoffCoefficient: 2}
			return orchestration.Await[int32](ctx.CallActivity("Flaky", nil, orchestration.WithRetry(policy)))
		}))
		must(rt.RegisterActivity("Flaky", func(ctx context.Context) (int32, error) {
			info, _ := orchestration.ActivityInfoFrom(ctx)
			if n := calls.Add(1); n <= failures {
				return 0, fmt.Errorf("failure %d", n)
			}
			return int32(info.Attempt), nil
		}))
	}
}

func TestRetriedActivitySucceedsAndItsBackoffSurvivesARestart(t *testing.T) {
	var calls atomic.Int32
	rt := open(t, durable.Options{}, registerFlaky(2, &calls, 10*time.Millisecond))
	id, _ := rt.Client().Start(waitCtx(t), "Retry", nil)
	if st := complete(t, rt, id); string(st.Output) != "3" || calls.Load() != 3 {
		t.Fatalf("%s %s after %d calls", st.RuntimeStatus, st.Output, calls.Load())
	}

	dir := t.TempDir()
	var calls2 atomic.Int32
	rt2 := open(t, durable.Options{Dir: dir}, registerFlaky(1, &calls2, 300*time.Millisecond))
	id2, _ := rt2.Client().Start(waitCtx(t), "Retry", nil)
	waitFor(t, "backoff timer", func() bool { return hasEvent(t, rt2, id2, history.TimerCreated) })
	must(rt2.Close())
	rt3 := open(t, durable.Options{Dir: dir}, registerFlaky(1, &calls2, 300*time.Millisecond))
	if st := complete(t, rt3, id2); string(st.Output) != "2" || calls2.Load() != 2 {
		t.Fatalf("%s %s after %d calls", st.RuntimeStatus, st.Output, calls2.Load())
	}
}

func TestCustomStatusIsVisible(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Status", func(ctx *orchestration.Context) (any, error) {
			_ = ctx.SetCustomStatus(map[string]string{"stage": "waiting"})
			return nil, ctx.WaitForExternalEvent("Go").Await(nil)
		}))
	})
	ctx := waitCtx(t)
	id, _ := rt.Client().Start(ctx, "Status", nil)
	waitFor(t, "custom status", func() bool { return string(statusOf(t, rt, id).CustomStatus) == `{"stage":"waiting"}` })
	must(rt.Client().RaiseEvent(ctx, id, "Go", nil))
	if st := complete(t, rt, id); string(st.CustomStatus) != `{"stage":"waiting"}` {
		t.Fatalf("%s", st.CustomStatus)
	}
}

func registerBlocking(started chan<- struct{}, canceled chan<- error) func(rt *durable.Runtime) {
	return func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Block", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.CallActivity("Forever", nil).Await(nil)
		}))
		must(rt.RegisterActivity("Forever", func(ctx context.Context) error {
			started <- struct{}{}
			<-ctx.Done()
			canceled <- ctx.Err()
			return ctx.Err()
		}))
	}
}

func TestTerminateEndsTheInstanceAndCancelsItsActivities(t *testing.T) {
	started, canceled := make(chan struct{}, 1), make(chan error, 1)
	rt := open(t, durable.Options{}, registerBlocking(started, canceled))
	ctx := waitCtx(t)
	c := rt.Client()
	id, _ := c.Start(ctx, "Block", nil)
	<-started
	must(c.Terminate(ctx, id, "enough"))
	st := statusOf(t, rt, id)
	if st.RuntimeStatus != durable.StatusTerminated || string(st.Output) != `"enough"` {
		t.Fatalf("%s %s", st.RuntimeStatus, st.Output)
	}
	select {
	case err := <-canceled:
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("activity context not canceled")
	}
	if err := c.Terminate(ctx, id, "again"); !errors.Is(err, durable.ErrInstanceCompleted) {
		t.Fatalf("terminate twice: %v", err)
	}
	if err := c.Terminate(ctx, "nobody", ""); !errors.Is(err, durable.ErrInstanceNotFound) {
		t.Fatalf("terminate unknown: %v", err)
	}
}

func TestSuspendedInstanceBuffersEventsAcrossARestartUntilResumed(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, registerApproval)
	ctx := waitCtx(t)
	id, _ := rt.Client().Start(ctx, "Approval", nil)
	must(rt.Client().Suspend(ctx, id, "hold on"))
	must(rt.Client().RaiseEvent(ctx, id, "Approve", "a"))
	must(rt.Client().RaiseEvent(ctx, id, "Approve", "b"))
	if st := statusOf(t, rt, id); st.RuntimeStatus != durable.StatusSuspended {
		t.Fatalf("%s", st.RuntimeStatus)
	}
	must(rt.Close())
	rt2 := open(t, durable.Options{Dir: dir}, registerApproval)
	time.Sleep(50 * time.Millisecond)
	if st := statusOf(t, rt2, id); st.RuntimeStatus != durable.StatusSuspended {
		t.Fatalf("after restart: %s", st.RuntimeStatus)
	}
	must(rt2.Client().Resume(ctx, id, "go"))
	if st := complete(t, rt2, id); string(st.Output) != `"a+b"` {
		t.Fatalf("%s %s", st.RuntimeStatus, st.Output)
	}
}

func TestTerminateWhileSuspended(t *testing.T) {
	rt := open(t, durable.Options{}, registerApproval)
	ctx := waitCtx(t)
	id, _ := rt.Client().Start(ctx, "Approval", nil)
	must(rt.Client().Suspend(ctx, id, ""))
	must(rt.Client().Terminate(ctx, id, "stop"))
	if st := statusOf(t, rt, id); st.RuntimeStatus != durable.StatusTerminated {
		t.Fatalf("%s", st.RuntimeStatus)
	}
}

func TestPurgeDeletesFinishedInstancesOnly(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		registerHello(rt)
		registerApproval(rt)
	})
	ctx := waitCtx(t)
	c := rt.Client()
	var done []string
	for i := 0; i < 5; i++ {
		id, _ := c.Start(ctx, "HelloCities", nil)
		complete(t, rt, id)
		done = append(done, id)
	}
	running, _ := c.Start(ctx, "Approval", nil)
	if err := c.Purge(ctx, running); !errors.Is(err, durable.ErrInstanceNotCompleted) {
		t.Fatalf("purge running: %v", err)
	}
	must(c.Purge(ctx, done[0]))
	if _, err := c.Status(ctx, done[0]); !errors.Is(err, durable.ErrInstanceNotFound) {
		t.Fatalf("after purge: %v", err)
	}
	if err := c.Purge(ctx, done[0]); !errors.Is(err, durable.ErrInstanceNotFound) {
		t.Fatalf("purge twice: %v", err)
	}
	n, err := c.PurgeBy(ctx, durable.PurgeFilter{CreatedFrom: time.Now().Add(-time.Hour)})
	if err != nil || n != 4 {
		t.Fatalf("purge by filter: %d %v", n, err)
	}
	if st := statusOf(t, rt, running); st.RuntimeStatus != durable.StatusRunning {
		t.Fatalf("running instance: %s", st.RuntimeStatus)
	}
}

func TestRestartRunsTheSameOrchestratorWithTheOriginalInput(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Echo", func(ctx *orchestration.Context) (any, error) {
			var in map[string]int
			err := ctx.Input(&in)
			return in, err
		}))
	})
	ctx := waitCtx(t)
	c := rt.Client()
	id, _ := c.Start(ctx, "Echo", map[string]int{"a": 1})
	complete(t, rt, id)
	newID, err := c.Restart(ctx, id, true)
	if err != nil || newID == id {
		t.Fatalf("%q %v", newID, err)
	}
	if st := complete(t, rt, newID); string(st.Output) != `{"a":1}` {
		t.Fatalf("%s", st.Output)
	}
	sameID, err := c.Restart(ctx, id, false)
	if err != nil || sameID != id {
		t.Fatalf("%q %v", sameID, err)
	}
	if st := complete(t, rt, id); string(st.Output) != `{"a":1}` {
		t.Fatalf("%s", st.Output)
	}
}

func TestRewindReRunsTheFailedTaskOnly(t *testing.T) {
	var aCalls, bCalls atomic.Int32
	var fixed atomic.Bool
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("AB", func(ctx *orchestration.Context) (any, error) {
			a, err := orchestration.Await[string](ctx.CallActivity("A", nil))
			if err != nil {
				return nil, err
			}
			b, err := orchestration.Await[string](ctx.CallActivity("B", nil))
			if err != nil {
				return nil, err
			}
			return a + b, nil
		}))
		must(rt.RegisterActivity("A", func(context.Context) (string, error) { aCalls.Add(1); return "a", nil }))
		must(rt.RegisterActivity("B", func(context.Context) (string, error) {
			bCalls.Add(1)
			if !fixed.Load() {
				return "", errors.New("b is broken")
			}
			return "b", nil
		}))
	})
	ctx := waitCtx(t)
	c := rt.Client()
	id, _ := c.Start(ctx, "AB", nil)
	if st := complete(t, rt, id); st.RuntimeStatus != durable.StatusFailed {
		t.Fatalf("%s", st.RuntimeStatus)
	}
	fixed.Store(true)
	must(c.Rewind(ctx, id, "fixed B"))
	if st := complete(t, rt, id); st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != `"ab"` {
		t.Fatalf("%s %s", st.RuntimeStatus, st.Output)
	}
	if aCalls.Load() != 1 || bCalls.Load() != 2 {
		t.Fatalf("A ran %d times, B %d times", aCalls.Load(), bCalls.Load())
	}
	if err := c.Rewind(ctx, id, ""); !errors.Is(err, durable.ErrNotFailed) {
		t.Fatalf("rewind a completed instance: %v", err)
	}
}

func TestHistoryWithoutPayloads(t *testing.T) {
	rt := open(t, durable.Options{}, registerHello)
	ctx := waitCtx(t)
	id, _ := rt.Client().Start(ctx, "HelloCities", nil)
	complete(t, rt, id)
	events, err := rt.Client().History(ctx, id, durable.WithoutPayloads())
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Payload != nil {
			t.Fatalf("%s has a payload", ev.Type)
		}
	}
	if events[2].Name != "Hello" {
		t.Fatalf("names must stay: %+v", events[2])
	}
}

func TestInstanceBusyAtItsIdleTimeoutStillPassivatesLater(t *testing.T) {
	rt := open(t, durable.Options{IdleTimeout: 30 * time.Millisecond}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("SlowThenWait", func(ctx *orchestration.Context) (any, error) {
			if err := ctx.CallActivity("Slow", nil).Await(nil); err != nil {
				return nil, err
			}
			return nil, ctx.WaitForExternalEvent("Go").Await(nil)
		}))
		must(rt.RegisterActivity("Slow", func(context.Context) error { time.Sleep(150 * time.Millisecond); return nil }))
	})
	ctx := waitCtx(t)
	before := runtime.NumGoroutine()
	const n = 50
	for i := 0; i < n; i++ {
		if _, err := rt.Client().Start(ctx, "SlowThenWait", nil, durable.WithInstanceID(fmt.Sprint("busy-", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprint("busy-", i)
		waitFor(t, "activity done", func() bool { return hasEvent(t, rt, id, history.TaskCompleted) })
	}
	// Every instance was busy when its first idle timeout fired; each must
	// still passivate and free its orchestrator goroutine.
	waitFor(t, "passivation after a busy timeout", func() bool { return runtime.NumGoroutine() < before+n/5 })
}

func TestContinueAsNewCanKeepTheOldHistory(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Loop", func(ctx *orchestration.Context) (any, error) {
			var n int
			_ = ctx.Input(&n)
			if n < 3 {
				return nil, ctx.ContinueAsNew(n+1, orchestration.KeepHistory())
			}
			return n, nil
		}))
	})
	ctx := waitCtx(t)
	id, _ := rt.Client().Start(ctx, "Loop", 0)
	if st := complete(t, rt, id); string(st.Output) != "3" {
		t.Fatalf("%s %s", st.RuntimeStatus, st.Output)
	}
	current, _ := rt.Client().History(ctx, id)
	all, err := rt.Client().History(ctx, id, durable.AllExecutions())
	if err != nil {
		t.Fatal(err)
	}
	starts := 0
	for _, ev := range all {
		if ev.Type == history.ExecutionStarted {
			starts++
		}
	}
	if starts != 4 || len(all) <= len(current) {
		t.Fatalf("%d executions kept (%d events, current %d), want 4", starts, len(all), len(current))
	}
	must(rt.Client().Purge(ctx, id))
	if _, err := rt.Client().History(ctx, id, durable.AllExecutions()); !errors.Is(err, durable.ErrInstanceNotFound) {
		t.Fatalf("after purge: %v", err)
	}
}

func registerTimedWait(rt *durable.Runtime) {
	must(rt.RegisterOrchestrator("TimedWait", func(ctx *orchestration.Context) (any, error) {
		var first string
		err := ctx.WaitForExternalEvent("Go", orchestration.WithTimeout(30*time.Millisecond)).Await(&first)
		var te *orchestration.TimeoutError
		if !errors.Is(err, orchestration.ErrTimeout) || !errors.As(err, &te) || te.Event != "Go" {
			return nil, fmt.Errorf("first wait: %v, want a timeout", err)
		}
		ctx.SetCustomStatus("timed out")
		// The withdrawn wait must not take this event.
		var second string
		if err := ctx.WaitForExternalEvent("Go").Await(&second); err != nil {
			return nil, err
		}
		// An event that comes in time beats the timer.
		var third string
		if err := ctx.WaitForExternalEvent("Go", orchestration.WithTimeout(time.Hour)).Await(&third); err != nil {
			return nil, err
		}
		return second + "+" + third, nil
	}))
}

func TestAWaitThatTimedOutIsWithdrawnAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, registerTimedWait)
	ctx := waitCtx(t)
	id, err := rt.Client().Start(ctx, "TimedWait", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first wait to time out", func() bool {
		st := statusOf(t, rt, id)
		if st.RuntimeStatus.IsTerminal() {
			t.Fatalf("%s %+v", st.RuntimeStatus, st.Failure)
		}
		return string(st.CustomStatus) == `"timed out"`
	})
	must(rt.Close())
	rt2 := open(t, durable.Options{Dir: dir}, registerTimedWait)
	must(rt2.Client().RaiseEvent(ctx, id, "Go", "a"))
	must(rt2.Client().RaiseEvent(ctx, id, "Go", "b"))
	if st := complete(t, rt2, id); string(st.Output) != `"a+b"` {
		t.Fatalf("%s %s %+v", st.RuntimeStatus, st.Output, st.Failure)
	}
}
