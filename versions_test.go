package durable_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

// orderVersion is a version of the "Order" orchestrator: it waits for the
// "go" event, then returns its name, so the output tells which code ran.
func orderVersion(name string) orchestration.Orchestrator {
	return func(ctx *orchestration.Context) (any, error) {
		if err := ctx.WaitForExternalEvent("go").Await(nil); err != nil {
			return nil, err
		}
		return name + "@" + ctx.Version(), nil
	}
}

// registerOrders registers the named versions of "Order" (each name is a
// version; "" registers the unversioned one), in order.
func registerOrders(versions ...string) func(rt *durable.Runtime) {
	return func(rt *durable.Runtime) {
		for _, v := range versions {
			if v == "" {
				must(rt.RegisterOrchestrator("Order", orderVersion("unversioned")))
				continue
			}
			must(rt.RegisterOrchestrator("Order", orderVersion("v"+v), durable.Version(v)))
		}
	}
}

func finish(t *testing.T, rt *durable.Runtime, id string) *durable.Status {
	t.Helper()
	ctx := waitCtx(t)
	must(rt.Client().RaiseEvent(ctx, id, "go", nil))
	st, err := rt.Client().WaitForCompletion(ctx, id)
	must(err)
	if st.RuntimeStatus != durable.StatusCompleted {
		t.Fatalf("%s: %s %+v", id, st.RuntimeStatus, st.Failure)
	}
	return st
}

func startedVersion(t *testing.T, rt *durable.Runtime, id string) string {
	t.Helper()
	events, err := rt.Client().History(waitCtx(t), id)
	must(err)
	for _, ev := range events {
		if ev.Type == history.ExecutionStarted {
			return ev.Version
		}
	}
	t.Fatalf("%s has no ExecutionStarted event", id)
	return ""
}

func executionOf(t *testing.T, rt *durable.Runtime, id string) string {
	t.Helper()
	events, err := rt.Client().History(waitCtx(t), id)
	must(err)
	for _, ev := range events {
		if ev.Type == history.ExecutionStarted {
			return ev.ExecutionID
		}
	}
	return ""
}

func TestNewInstancesStartOnTheDefaultVersionOrTheOneChosenAndRecordIt(t *testing.T) {
	tests := []struct {
		name       string
		register   func(rt *durable.Runtime)
		start      []durable.StartOption
		want, with string
	}{
		{"unversioned", registerOrders(""), nil, `"unversioned@"`, ""},
		{"the latest registered is the default", registerOrders("", "1", "2"), nil, `"v2@2"`, "2"},
		{"a start picks a version", registerOrders("1", "2"), []durable.StartOption{durable.WithVersion("1")}, `"v1@1"`, "1"},
		{"a start picks the unversioned one", registerOrders("", "2"), []durable.StartOption{durable.WithVersion("")}, `"unversioned@"`, ""},
		{"AsDefault chooses the default", func(rt *durable.Runtime) {
			must(rt.RegisterOrchestrator("Order", orderVersion("v1"), durable.Version("1"), durable.AsDefault()))
			must(rt.RegisterOrchestrator("Order", orderVersion("v2"), durable.Version("2")))
		}, nil, `"v1@1"`, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := open(t, durable.Options{}, tt.register)
			id, err := rt.Client().Start(waitCtx(t), "Order", nil, tt.start...)
			must(err)
			st, err := rt.Client().Status(waitCtx(t), id)
			must(err)
			if st.Version != tt.with || st.VersionNotRegistered {
				t.Fatalf("status version %q (not registered: %v), want %q", st.Version, st.VersionNotRegistered, tt.with)
			}
			if got := startedVersion(t, rt, id); got != tt.with {
				t.Fatalf("ExecutionStarted records version %q, want %q", got, tt.with)
			}
			if st := finish(t, rt, id); string(st.Output) != tt.want || st.Version != tt.with {
				t.Fatalf("output %s on version %q, want %s on %q", st.Output, st.Version, tt.want, tt.with)
			}
		})
	}
}

func TestRegisteringAndStartingVersionsRejectsBadInput(t *testing.T) {
	rt, err := durable.Open(durable.Options{Logger: quiet})
	must(err)
	defer rt.Close()
	fn := orderVersion("x")
	must(rt.RegisterOrchestrator("Order", fn, durable.Version("1"), durable.AsDefault()))
	for _, tt := range []struct {
		name string
		err  error
		opts []durable.RegisterOption
	}{
		{"the same version twice", durable.ErrAlreadyRegistered, []durable.RegisterOption{durable.Version("1")}},
		{"a second default", durable.ErrInvalidInput, []durable.RegisterOption{durable.Version("2"), durable.AsDefault()}},
		{"a control character", durable.ErrInvalidInput, []durable.RegisterOption{durable.Version("3\n")}},
		{"too long", durable.ErrInvalidInput, []durable.RegisterOption{durable.Version(strings.Repeat("9", durable.MaxVersionLength+1))}},
	} {
		if err := rt.RegisterOrchestrator("Order", fn, tt.opts...); !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
	must(rt.Start())
	if _, err := rt.Client().Start(waitCtx(t), "Order", nil, durable.WithVersion("7")); !errors.Is(err, durable.ErrOrchestratorNotRegistered) {
		t.Fatalf("start on an unregistered version: %v", err)
	}
	list, err := rt.Client().List(waitCtx(t), durable.Query{})
	must(err)
	if len(list.Instances) != 0 {
		t.Fatalf("a refused start left %d instances", len(list.Instances))
	}
}

func TestARunningInstanceContinuesOnTheVersionItStartedWith(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, registerOrders(""))
	old, err := rt.Client().Start(waitCtx(t), "Order", nil)
	must(err)
	must(rt.Close())

	rt = open(t, durable.Options{Dir: dir}, registerOrders("", "2"))
	fresh, err := rt.Client().Start(waitCtx(t), "Order", nil)
	must(err)
	if st := finish(t, rt, old); string(st.Output) != `"unversioned@"` {
		t.Fatalf("the old instance ran %s", st.Output)
	}
	if st := finish(t, rt, fresh); string(st.Output) != `"v2@2"` {
		t.Fatalf("the new instance ran %s", st.Output)
	}
}

// logBuffer is a slog handler's sink that tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestANodeWithoutTheVersionLeavesTheInstanceWaitingAndANodeWithItRunsIt(t *testing.T) {
	dir := t.TempDir()
	// v2 calls Ship, which on the first node runs until the node shuts
	// down: its task stays pending, so the next node's recovery loads the
	// instance (and the node that lacks v2 leaves it waiting), and the node
	// that has v2 runs it again and finishes the instance on its own.
	shipping := make(chan struct{}, 1)
	register := func(withV2 bool, ship func(context.Context) (string, error)) func(rt *durable.Runtime) {
		return func(rt *durable.Runtime) {
			registerOrders("1")(rt)
			if withV2 {
				must(rt.RegisterOrchestrator("Order", func(ctx *orchestration.Context) (any, error) {
					return orchestration.Await[string](ctx.CallActivity("Ship", nil))
				}, durable.Version("2")))
			}
			must(rt.RegisterActivity("Ship", ship))
		}
	}
	rt := open(t, durable.Options{Dir: dir}, register(true, func(ctx context.Context) (string, error) {
		shipping <- struct{}{}
		<-ctx.Done()
		return "", ctx.Err()
	}))
	id, err := rt.Client().Start(waitCtx(t), "Order", nil)
	must(err)
	<-shipping
	must(rt.Close())

	shipped := func(context.Context) (string, error) { return "v2 shipped", nil }
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt = open(t, durable.Options{Dir: dir, Logger: logger}, register(false, shipped))
	waitFor(t, "recovery to load the instance", func() bool { return rt.Stats().WaitingForVersion == 1 })
	st, err := rt.Client().Status(waitCtx(t), id)
	must(err)
	if st.RuntimeStatus != durable.StatusRunning || !st.VersionNotRegistered || st.Version != "2" {
		t.Fatalf("waiting instance: %s, version %q, not registered %v", st.RuntimeStatus, st.Version, st.VersionNotRegistered)
	}
	if err := rt.Client().RaiseEvent(waitCtx(t), id, "go", nil); !errors.Is(err, durable.ErrOrchestratorNotRegistered) {
		t.Fatalf("an event to the waiting instance: %v", err)
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, `version=2`) {
		t.Fatalf("no warning logged: %q", got)
	}
	// A new instance starts on the default this node has.
	other, err := rt.Client().Start(waitCtx(t), "Order", nil)
	must(err)
	if st := finish(t, rt, other); string(st.Output) != `"v1@1"` {
		t.Fatalf("a new instance on the node without v2 ran %s", st.Output)
	}
	must(rt.Close())

	rt = open(t, durable.Options{Dir: dir}, register(true, shipped))
	st, err = rt.Client().WaitForCompletion(waitCtx(t), id)
	must(err)
	if st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != `"v2 shipped"` || st.VersionNotRegistered {
		t.Fatalf("on the node with v2: %s %s (not registered %v) %+v", st.RuntimeStatus, st.Output, st.VersionNotRegistered, st.Failure)
	}
	if n := rt.Stats().WaitingForVersion; n != 0 {
		t.Fatalf("%d instances wait on the node that has every version", n)
	}
}

func TestContinueAsNewMovesToTheDefaultVersionOnlyWhenAsked(t *testing.T) {
	// "Monitor" version 1 waits for "go" and continues as new, on the
	// default version when its input says so; version 2 returns at once.
	v1 := func(ctx *orchestration.Context) (any, error) {
		var move bool
		must(ctx.Input(&move))
		if err := ctx.WaitForExternalEvent("go").Await(nil); err != nil {
			return nil, err
		}
		if move {
			return nil, ctx.ContinueAsNew(move, orchestration.OnDefaultVersion())
		}
		return nil, ctx.ContinueAsNew(move)
	}
	v2 := func(ctx *orchestration.Context) (any, error) { return "v2", nil }
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Monitor", v1, durable.Version("1")))
	})
	stay, err := rt.Client().Start(waitCtx(t), "Monitor", false)
	must(err)
	move, err := rt.Client().Start(waitCtx(t), "Monitor", true)
	must(err)
	must(rt.Close())

	rt = open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Monitor", v1, durable.Version("1")))
		must(rt.RegisterOrchestrator("Monitor", v2, durable.Version("2")))
	})
	ctx := waitCtx(t)
	must(rt.Client().RaiseEvent(ctx, move, "go", nil))
	st, err := rt.Client().WaitForCompletion(ctx, move)
	must(err)
	if string(st.Output) != `"v2"` || st.Version != "2" || startedVersion(t, rt, move) != "2" {
		t.Fatalf("moved instance: %s on %q", st.Output, st.Version)
	}
	first := executionOf(t, rt, stay)
	must(rt.Client().RaiseEvent(ctx, stay, "go", nil))
	waitFor(t, "the staying instance's next execution", func() bool { e := executionOf(t, rt, stay); return e != "" && e != first })
	st, err = rt.Client().Status(ctx, stay)
	must(err)
	if st.RuntimeStatus != durable.StatusRunning || st.Version != "1" || startedVersion(t, rt, stay) != "1" {
		t.Fatalf("staying instance: %s on %q", st.RuntimeStatus, st.Version)
	}
}

func TestAWaitingInstanceCanStillBeTerminated(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, registerOrders("1", "2"))
	id, err := rt.Client().Start(waitCtx(t), "Order", nil)
	must(err)
	must(rt.Close())

	rt = open(t, durable.Options{Dir: dir}, registerOrders("1"))
	if err := rt.Client().RaiseEvent(waitCtx(t), id, "go", nil); !errors.Is(err, durable.ErrOrchestratorNotRegistered) {
		t.Fatalf("an event to the waiting instance: %v", err)
	}
	if n := rt.Stats().WaitingForVersion; n != 1 {
		t.Fatalf("%d instances wait for a version", n)
	}
	must(rt.Client().Terminate(waitCtx(t), id, "version 2 is withdrawn"))
	st, err := rt.Client().WaitForCompletion(waitCtx(t), id)
	must(err)
	if st.RuntimeStatus != durable.StatusTerminated || st.VersionNotRegistered || st.Version != "2" {
		t.Fatalf("after terminate: %s, version %q, not registered %v", st.RuntimeStatus, st.Version, st.VersionNotRegistered)
	}
	// The actor hears of its commit right after the waiters do.
	waitFor(t, "the terminated instance to leave the count", func() bool { return rt.Stats().WaitingForVersion == 0 })
	// The id is free again, for the version this node has.
	again, err := rt.Client().Start(waitCtx(t), "Order", nil, durable.WithInstanceID(id))
	must(err)
	if st := finish(t, rt, again); string(st.Output) != `"v1@1"` {
		t.Fatalf("the id started again ran %s", st.Output)
	}
}
