package durable_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// Rewind is how a user recovers after deploying a fix. When the
// orchestrator code itself failed (no activity failure to re-run), the
// failed turn is taken back and run again on the code registered now.
// These tests deploy the fix the real way: close the runtime, open the same
// directory with the new code registered, and rewind there.

// greetThen is an orchestrator that greets Oslo (an activity, counted in
// runs) and then hands the greeting to finish, the part a fix changes.
func greetThen(finish func(ctx *orchestration.Context, greeting string) (any, error)) orchestration.Orchestrator {
	return func(ctx *orchestration.Context) (any, error) {
		s, err := orchestration.Await[string](ctx.CallActivity("Hello", "Oslo"))
		if err != nil {
			return nil, err
		}
		return finish(ctx, s)
	}
}

func TestRewindOfACodeFailureRerunsTheOrchestratorOnTheFixedCode(t *testing.T) {
	dir := t.TempDir()
	var runs atomic.Int32
	deploy := func(o orchestration.Orchestrator) *durable.Runtime {
		return open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
			must(rt.RegisterOrchestrator("Greeter", o))
			must(rt.RegisterActivity("Hello", func(_ context.Context, city string) (string, error) {
				runs.Add(1)
				return "Hello " + city + "!", nil
			}))
		})
	}
	buggy := greetThen(func(*orchestration.Context, string) (any, error) {
		return nil, errors.New("a bug in the orchestrator code")
	})
	fixed := greetThen(func(_ *orchestration.Context, s string) (any, error) { return strings.ToUpper(s), nil })

	rt := deploy(buggy)
	ctx := waitCtx(t)
	id, err := rt.Client().Start(ctx, "Greeter", nil)
	if err != nil {
		t.Fatal(err)
	}
	st := waitForStatus(t, rt, id, durable.StatusFailed)
	if st.Failure == nil || !strings.Contains(st.Failure.Message, "a bug in the orchestrator code") {
		t.Fatalf("failure %+v", st.Failure)
	}
	// The same code: the rewind is accepted, the turn runs again and fails
	// again the same way.
	if err := rt.Client().Rewind(ctx, id, "try again"); err != nil {
		t.Fatalf("rewind on the same code: %v", err)
	}
	waitForStatus(t, rt, id, durable.StatusFailed)
	must(rt.Close())

	rt = deploy(fixed)
	if err := rt.Client().Rewind(ctx, id, "fix deployed"); err != nil {
		t.Fatalf("rewind on the fixed code: %v", err)
	}
	st = waitForStatus(t, rt, id, durable.StatusCompleted)
	if string(st.Output) != `"HELLO OSLO!"` {
		t.Fatalf("output %s", st.Output)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the activity ran %d times; its result was in history before the failed turn and must be reused", n)
	}
}

// TestRewindOfAFailureInTheFirstTurnRunsTheStartAgain: the code failed on
// its input before scheduling anything (the sample app's HelloCities given
// "" did that). The rewind hands the start to the fixed code.
func TestRewindOfAFailureInTheFirstTurnRunsTheStartAgain(t *testing.T) {
	dir := t.TempDir()
	strict := func(ctx *orchestration.Context) (any, error) {
		var cities []string
		if err := ctx.Input(&cities); err != nil {
			return nil, err
		}
		return len(cities), nil
	}
	lenient := func(ctx *orchestration.Context) (any, error) {
		cities := []string{"Tokyo", "Seattle", "London"}
		if _, err := ctx.OptionalInput(&cities); err != nil {
			return nil, err
		}
		return len(cities), nil
	}
	rt := open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) { must(rt.RegisterOrchestrator("Cities", strict)) })
	ctx := waitCtx(t)
	id, err := rt.Client().Start(ctx, "Cities", "")
	if err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, rt, id, durable.StatusFailed)
	must(rt.Close())
	rt = open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) { must(rt.RegisterOrchestrator("Cities", lenient)) })
	if err := rt.Client().Rewind(ctx, id, "fixed"); err != nil {
		t.Fatal(err)
	}
	if st := waitForStatus(t, rt, id, durable.StatusCompleted); string(st.Output) != `3` {
		t.Fatalf("output %s", st.Output)
	}
}

// TestRewindOfACodeFailureSurvivesACloseBeforeTheTurn: the rewound turn's
// inputs (here the activity result) are in the store with the rewind, so a
// runtime closed right after the rewind commits finishes it on reopen.
func TestRewindOfACodeFailureSurvivesACloseBeforeTheTurn(t *testing.T) {
	dir := t.TempDir()
	var broken atomic.Bool
	broken.Store(true)
	var runs atomic.Int32
	register := func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Greeter", greetThen(func(_ *orchestration.Context, s string) (any, error) {
			if broken.Load() {
				return nil, errors.New("broken")
			}
			return s, nil
		})))
		must(rt.RegisterActivity("Hello", func(_ context.Context, city string) (string, error) {
			runs.Add(1)
			return "Hello " + city + "!", nil
		}))
	}
	rt := open(t, durable.Options{Dir: dir}, register)
	ctx := waitCtx(t)
	id, err := rt.Client().Start(ctx, "Greeter", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, rt, id, durable.StatusFailed)
	// Still broken when the rewound turn runs at once: it fails again, but
	// only after the rewind and its inbox committed. Then fix and reopen,
	// rewind again, and close at once.
	must(rt.Client().Rewind(ctx, id, "again"))
	waitForStatus(t, rt, id, durable.StatusFailed)
	must(rt.Close())
	broken.Store(false)
	rt = open(t, durable.Options{Dir: dir}, register)
	must(rt.Client().Rewind(ctx, id, "fixed"))
	must(rt.Close())
	rt = open(t, durable.Options{Dir: dir}, register)
	st := waitForStatus(t, rt, id, durable.StatusCompleted)
	if string(st.Output) != `"Hello Oslo!"` || runs.Load() != 1 {
		t.Fatalf("output %s after %d activity runs", st.Output, runs.Load())
	}
}

// TestRewindAnswersWhyWhenTheCurrentCodeCannotReplayTheHistory: a fix that
// changed what the code asks for before the failure cannot take the turn
// back; the rewind is refused with ErrInvalidInput and a reason, and
// changes nothing.
func TestRewindAnswersWhyWhenTheCurrentCodeCannotReplayTheHistory(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Greeter", greetThen(func(*orchestration.Context, string) (any, error) { return nil, errors.New("bug") })))
		must(rt.RegisterActivity("Hello", hello))
	})
	ctx := waitCtx(t)
	id, err := rt.Client().Start(ctx, "Greeter", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, rt, id, durable.StatusFailed)
	must(rt.Close())
	rt = open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Greeter", func(ctx *orchestration.Context) (any, error) {
			return orchestration.Await[string](ctx.CallActivity("Goodbye", "Oslo"))
		}))
		must(rt.RegisterActivity("Hello", hello))
	})
	err = rt.Client().Rewind(ctx, id, "fixed?")
	if !errors.Is(err, durable.ErrInvalidInput) || !strings.Contains(err.Error(), "does not replay") {
		t.Fatalf("rewind: %v, want ErrInvalidInput saying the code does not replay", err)
	}
	st, err := rt.Client().Status(ctx, id)
	if err != nil || st.RuntimeStatus != durable.StatusFailed {
		t.Fatalf("after a refused rewind: %+v %v", st, err)
	}
}
