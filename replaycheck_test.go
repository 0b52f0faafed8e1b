package durable_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

// prepareThenWait calls activity, then waits for Go.
func prepareThenWait(activity string) orchestration.Orchestrator {
	return func(ctx *orchestration.Context) (any, error) {
		if err := ctx.CallActivity(activity, nil).Await(nil); err != nil {
			return nil, err
		}
		return nil, ctx.WaitForExternalEvent("Go").Await(nil)
	}
}

func TestCheckRunningReportsTheInstancesChangedCodeWouldFail(t *testing.T) {
	dir := t.TempDir()
	ctx := waitCtx(t)
	noop := func(context.Context) error { return nil }
	rt := open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Changed", prepareThenWait("A")))
		must(rt.RegisterOrchestrator("Kept", prepareThenWait("A")))
		must(rt.RegisterOrchestrator("Dropped", prepareThenWait("A")))
		must(rt.RegisterActivity("A", noop))
	})
	starts := map[string]string{"changed-1": "Changed", "changed-2": "Changed", "kept-1": "Kept", "dropped-1": "Dropped"}
	for id, name := range starts {
		if _, err := rt.Client().Start(ctx, name, nil, durable.WithInstanceID(id)); err != nil {
			t.Fatal(err)
		}
	}
	for id := range starts {
		waitFor(t, id+" to wait for Go", func() bool {
			events, _ := rt.Client().History(ctx, id)
			return len(events) > 0 && events[len(events)-1].Type == history.TaskCompleted
		})
	}
	must(rt.Close())

	// The new deployment: Changed calls B where history has A, Kept is
	// the same, Dropped is gone.
	rt2 := open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Changed", prepareThenWait("B")))
		must(rt.RegisterOrchestrator("Kept", prepareThenWait("A")))
		must(rt.RegisterActivity("A", noop))
		must(rt.RegisterActivity("B", noop))
	})
	report, err := rt2.CheckRunning(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if report.OK() {
		t.Fatalf("report is OK:\n%s", report)
	}
	for _, want := range []durable.OrchestratorReplay{
		{Name: "Changed", Instances: 2, Replayed: 2, WouldFail: 2},
		{Name: "Dropped", Instances: 1, Unregistered: 1},
		{Name: "Kept", Instances: 1, Replayed: 1, Fine: 1},
	} {
		got := report.Orchestrator(want.Name)
		if got == nil {
			t.Fatalf("no %s in\n%s", want.Name, report)
		}
		if got.Instances != want.Instances || got.Replayed != want.Replayed || got.Fine != want.Fine ||
			got.WouldFail != want.WouldFail || got.Unregistered != want.Unregistered || len(got.Failures) != want.WouldFail {
			t.Errorf("%s: got %+v, want %+v", want.Name, got, want)
		}
		for _, f := range got.Failures {
			var nd *orchestration.NonDeterminismError
			if !strings.HasPrefix(f.InstanceID, "changed-") || !errors.As(f.Err, &nd) || nd.Position != 2 ||
				!strings.Contains(nd.Recorded, `name="A"`) || !strings.Contains(nd.Requested, `name="B"`) {
				t.Errorf("failure %s: %v", f.InstanceID, f.Err)
			}
		}
	}
	if s := report.String(); !strings.Contains(s, "Changed: 2 running, 2 replayed, 0 fine, 2 would fail") || !strings.Contains(s, "history event 2") {
		t.Errorf("report text:\n%s", s)
	}
	// The check changed nothing: the instances still wait.
	for id := range starts {
		st, err := rt2.Client().Status(ctx, id)
		if err != nil || st.RuntimeStatus != durable.StatusRunning {
			t.Errorf("%s after the check: %v %+v", id, err, st)
		}
	}
}

func TestCheckRunningReplaysEachInstanceAgainstTheVersionItRecorded(t *testing.T) {
	dir := t.TempDir()
	ctx := waitCtx(t)
	noop := func(context.Context) error { return nil }
	rt := open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Order", prepareThenWait("A"), durable.Version("1")))
		must(rt.RegisterOrchestrator("Order", prepareThenWait("B"), durable.Version("2")))
		must(rt.RegisterActivity("A", noop))
		must(rt.RegisterActivity("B", noop))
	})
	for id, v := range map[string]string{"on-1": "1", "on-2": "2"} {
		if _, err := rt.Client().Start(ctx, "Order", nil, durable.WithInstanceID(id), durable.WithVersion(v)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, id+" to wait for Go", func() bool { return hasEvent(t, rt, id, history.TaskCompleted) })
	}
	must(rt.Close())

	// The new deployment keeps version 1, drops 2 and adds 3 (the default,
	// whose code would fail both histories).
	rt2 := open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Order", prepareThenWait("A"), durable.Version("1")))
		must(rt.RegisterOrchestrator("Order", prepareThenWait("C"), durable.Version("3")))
		must(rt.RegisterActivity("A", noop))
		must(rt.RegisterActivity("C", noop))
	})
	report, err := rt2.CheckRunning(ctx)
	must(err)
	if report.OK() || len(report.Orchestrators) != 2 {
		t.Fatalf("report:\n%s", report)
	}
	if o := report.OrchestratorVersion("Order", "1"); o == nil || o.Replayed != 1 || o.Fine != 1 || o.WouldFail != 0 {
		t.Fatalf("version 1: %+v\n%s", o, report)
	}
	if o := report.OrchestratorVersion("Order", "2"); o == nil || o.Unregistered != 1 || o.Replayed != 0 {
		t.Fatalf("version 2: %+v\n%s", o, report)
	}
	if s := report.String(); !strings.Contains(s, `Order version "2": 1 running, 0 replayed, 0 fine, 0 would fail, 1 without registered code`) {
		t.Fatalf("report text:\n%s", s)
	}
}

func TestStartWithCheckRunningFirstRefusesCodeThatRunningInstancesWouldFailOn(t *testing.T) {
	dir := t.TempDir()
	ctx := waitCtx(t)
	noop := func(context.Context) error { return nil }
	rt := open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Order", prepareThenWait("A")))
		must(rt.RegisterActivity("A", noop))
	})
	id, err := rt.Client().Start(ctx, "Order", nil, durable.WithInstanceID("order-1"))
	must(err)
	waitFor(t, "order-1 to wait for Go", func() bool { return hasEvent(t, rt, id, history.TaskCompleted) })
	must(rt.Close())

	for _, tt := range []struct {
		name     string
		register func(rt *durable.Runtime)
		check    func(o *durable.OrchestratorReplay) bool
	}{
		{"changed code", func(rt *durable.Runtime) {
			must(rt.RegisterOrchestrator("Order", prepareThenWait("B")))
		}, func(o *durable.OrchestratorReplay) bool { return o.WouldFail == 1 && len(o.Failures) == 1 }},
		{"only a new version", func(rt *durable.Runtime) {
			must(rt.RegisterOrchestrator("Order", prepareThenWait("B"), durable.Version("2")))
		}, func(o *durable.OrchestratorReplay) bool { return o.Unregistered == 1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := durable.Open(durable.Options{Dir: dir, Logger: quiet})
			must(err)
			defer rt.Close()
			tt.register(rt)
			must(rt.RegisterActivity("A", noop))
			must(rt.RegisterActivity("B", noop))
			err = rt.Start(durable.CheckRunningFirst())
			var refused *durable.ReplayCheckError
			if !errors.Is(err, durable.ErrRunningWouldFail) || !errors.As(err, &refused) {
				t.Fatalf("start: %v", err)
			}
			if o := refused.Report.Orchestrator("Order"); o == nil || !tt.check(o) {
				t.Fatalf("report:\n%s", refused.Report)
			}
			if _, err := rt.Client().Status(ctx, id); !errors.Is(err, durable.ErrNotStarted) {
				t.Fatalf("a refused runtime serves: %v", err)
			}
		})
	}

	// The code the instance started with passes, and the instance goes on.
	rt, err = durable.Open(durable.Options{Dir: dir, Logger: quiet})
	must(err)
	defer rt.Close()
	must(rt.RegisterOrchestrator("Order", prepareThenWait("A")))
	must(rt.RegisterActivity("A", noop))
	must(rt.Start(durable.CheckRunningFirst()))
	must(rt.Client().RaiseEvent(ctx, id, "Go", nil))
	if st, err := rt.Client().WaitForCompletion(ctx, id); err != nil || st.RuntimeStatus != durable.StatusCompleted {
		t.Fatalf("after the check: %v %+v", err, st)
	}
}
