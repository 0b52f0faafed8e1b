package orchestration

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable/history"
)

// driver runs an orchestrator turn by turn, keeps its history, and checks
// after every turn that a fresh execution replays that history to the same
// state without asking for anything new.
type driver struct {
	t    *testing.T
	fn   Orchestrator
	e    *Execution
	hist []*history.Event
	turn *Turn
	n    int
}

func newDriver(t *testing.T, fn Orchestrator, input string) *driver {
	d := &driver{t: t, fn: fn, e: NewExecution("inst", "exec-1234", fn, nil)}
	t.Cleanup(d.e.Close)
	d.apply(&history.Event{Type: history.ExecutionStarted, Timestamp: t0, Name: "T", Payload: []byte(input)})
	return d
}

func (d *driver) apply(events ...*history.Event) *Turn {
	d.t.Helper()
	d.n++
	in := append([]*history.Event{{Type: history.OrchestratorStarted, Timestamp: t0.Add(time.Duration(d.n) * time.Second)}}, events...)
	turn, err := d.e.Apply(in)
	if err != nil {
		d.t.Fatal(err)
	}
	d.hist = append(d.hist, turn.Events...)
	d.turn = turn
	d.replayCheck()
	return turn
}

func (d *driver) replayCheck() {
	d.t.Helper()
	r := NewExecution("inst", "exec-1234", d.fn, nil)
	defer r.Close()
	turn, err := r.Replay(d.hist)
	if err != nil {
		d.t.Fatal(err)
	}
	if turn.Failure != nil && (d.turn.Failure == nil || turn.Failure.Message != d.turn.Failure.Message) {
		d.t.Fatalf("replay failed: %v", turn.Failure)
	}
	if len(turn.Events) != 0 || turn.Done != d.turn.Done || string(turn.Output) != string(d.turn.Output) {
		d.t.Fatalf("replay diverged: %+v vs live %+v", turn, d.turn)
	}
}

func (d *driver) action(typ history.Type) *history.Event {
	d.t.Helper()
	for _, a := range d.turn.Actions {
		if a.Type == typ {
			return a
		}
	}
	d.t.Fatalf("no %s among %d actions", typ, len(d.turn.Actions))
	return nil
}

func completed(id int64, payload string) *history.Event {
	return &history.Event{Type: history.TaskCompleted, TaskID: id, Payload: []byte(payload)}
}

func fired(a *history.Event) *history.Event {
	return &history.Event{Type: history.TimerFired, TaskID: a.TaskID, FireAt: a.FireAt}
}

func raised(name, payload string) *history.Event {
	return &history.Event{Type: history.EventRaised, Name: name, Payload: []byte(payload)}
}

func TestTimerFiresAtTheTurnTimePlusItsDuration(t *testing.T) {
	d := newDriver(t, func(ctx *Context) (any, error) {
		start := ctx.Now()
		if err := ctx.CreateTimer(time.Hour).Await(nil); err != nil {
			return nil, err
		}
		return ctx.Now().Sub(start).String(), nil
	}, "")
	timer := d.action(history.TimerCreated)
	if !timer.FireAt.Equal(t0.Add(time.Hour + time.Second)) {
		t.Fatalf("fire at %v", timer.FireAt)
	}
	turn := d.apply(fired(timer))
	if !turn.Done || string(turn.Output) != `"1s"` {
		t.Fatalf("%+v", turn)
	}
}

func TestEventArrivingBeforeWaitIsBuffered(t *testing.T) {
	d := newDriver(t, func(ctx *Context) (any, error) {
		if err := ctx.CallActivity("First", nil).Await(nil); err != nil {
			return nil, err
		}
		a, _ := Await[string](ctx.WaitForExternalEvent("Go"))
		b, _ := Await[string](ctx.WaitForExternalEvent("go"))
		return a + b, nil
	}, "")
	act := d.action(history.TaskScheduled)
	d.apply(raised("GO", `"x"`), raised("Go", `"y"`))
	turn := d.apply(completed(act.TaskID, "null"))
	if string(turn.Output) != `"xy"` {
		t.Fatalf("output %s", turn.Output)
	}
}

func TestWhenAllWaitsForEveryTaskAndWhenAnyForTheFirst(t *testing.T) {
	d := newDriver(t, func(ctx *Context) (any, error) {
		var tasks []Task
		for i := 0; i < 3; i++ {
			tasks = append(tasks, ctx.CallActivity("Double", i))
		}
		if err := ctx.WhenAll(tasks...).Await(nil); err != nil {
			return nil, err
		}
		sum := 0
		for _, task := range tasks {
			v, _ := Await[int](task)
			sum += v
		}
		timeout := ctx.CreateTimer(time.Minute)
		approval := ctx.WaitForExternalEvent("Approval")
		w := ctx.WhenAny(approval, timeout)
		if err := w.Await(nil); err != nil {
			return nil, err
		}
		return fmt.Sprintf("%d %v", sum, w.Winner() == approval), nil
	}, "")
	acts := d.turn.Actions
	if len(acts) != 3 {
		t.Fatalf("%d actions", len(acts))
	}
	d.apply(completed(acts[2].TaskID, "4"), completed(acts[0].TaskID, "0"))
	if len(d.turn.Actions) != 0 {
		t.Fatal("WhenAll completed early")
	}
	d.apply(completed(acts[1].TaskID, "2"))
	d.action(history.TimerCreated)
	turn := d.apply(raised("Approval", "true"))
	if string(turn.Output) != `"6 true"` {
		t.Fatalf("output %s", turn.Output)
	}
}

func TestWhenAllReportsTheFirstFailureInTaskOrder(t *testing.T) {
	d := newDriver(t, func(ctx *Context) (any, error) {
		a, b := ctx.CallActivity("A", nil), ctx.CallActivity("B", nil)
		err := ctx.WhenAll(a, b).Await(nil)
		var tf *TaskFailedError
		if errors.As(err, &tf) {
			return tf.TaskName, nil
		}
		return nil, err
	}, "")
	fail := func(id int64) *history.Event {
		return &history.Event{Type: history.TaskFailed, TaskID: id, Failure: &FailureDetails{Message: "x"}}
	}
	turn := d.apply(fail(1), fail(0))
	if string(turn.Output) != `"A"` {
		t.Fatalf("output %s", turn.Output)
	}
}

func TestLargeFanOutCompletesInOneTurn(t *testing.T) {
	const n = 10000
	d := newDriver(t, func(ctx *Context) (any, error) {
		tasks := make([]Task, n)
		for i := range tasks {
			tasks[i] = ctx.CallActivity("One", nil)
		}
		if err := ctx.WhenAll(tasks...).Await(nil); err != nil {
			return nil, err
		}
		return len(tasks), nil
	}, "")
	var results []*history.Event
	for _, a := range d.turn.Actions {
		results = append(results, completed(a.TaskID, "1"))
	}
	turn := d.apply(results...)
	if string(turn.Output) != fmt.Sprint(n) {
		t.Fatalf("output %s", turn.Output)
	}
}

func TestSubOrchestrationGetsADeterministicIDAndItsFailureIsTyped(t *testing.T) {
	d := newDriver(t, func(ctx *Context) (any, error) {
		out, err := Await[string](ctx.CallSubOrchestrator("Child", 1))
		if err != nil {
			return nil, err
		}
		err = ctx.CallSubOrchestrator("Child", 2, WithInstanceID("chosen")).Await(nil)
		var tf *TaskFailedError
		if !errors.As(err, &tf) || tf.Failure.Message != "child broke" {
			return nil, fmt.Errorf("want the child's failure, got %v", err)
		}
		return out, nil
	}, "")
	first := d.action(history.SubOrchestrationCreated)
	if first.InstanceID != "inst:exec-123:0" || first.Name != "Child" || string(first.Payload) != "1" {
		t.Fatalf("%+v", first)
	}
	d.apply(&history.Event{Type: history.SubOrchestrationCompleted, TaskID: first.TaskID, Payload: []byte(`"ok"`)})
	second := d.action(history.SubOrchestrationCreated)
	if second.InstanceID != "chosen" {
		t.Fatalf("%+v", second)
	}
	turn := d.apply(&history.Event{Type: history.SubOrchestrationFailed, TaskID: second.TaskID, Failure: &FailureDetails{Message: "child broke"}})
	if turn.Failure != nil || string(turn.Output) != `"ok"` {
		t.Fatalf("%+v %v", turn, turn.Failure)
	}
}

func TestContinueAsNewCarriesOverUnconsumedEvents(t *testing.T) {
	d := newDriver(t, func(ctx *Context) (any, error) {
		var n int
		_ = ctx.Input(&n)
		if err := ctx.CallActivity("Work", n).Await(nil); err != nil {
			return nil, err
		}
		return nil, ctx.ContinueAsNew(n+1, KeepHistory())
	}, "5")
	act := d.action(history.TaskScheduled)
	d.apply(raised("later", `"kept"`))
	turn := d.apply(completed(act.TaskID, "null"))
	if !turn.Done || !turn.ContinuedAsNew || string(turn.NewInput) != "6" || !turn.KeepHistory {
		t.Fatalf("%+v", turn)
	}
	if len(turn.CarryOver) != 1 || turn.CarryOver[0].Name != "later" || string(turn.CarryOver[0].Payload) != `"kept"` {
		t.Fatalf("carry over %+v", turn.CarryOver)
	}
	if last := turn.Events[len(turn.Events)-1]; last.Type != history.ContinuedAsNew {
		t.Fatalf("last event %s", last.Type)
	}
}

func TestRetryWaitsOnDurableTimersWithBackoffThenGivesUp(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 3, FirstRetryInterval: time.Second, BackoffCoefficient: 2}
	d := newDriver(t, func(ctx *Context) (any, error) {
		return nil, ctx.CallActivity("Flaky", nil, WithRetry(policy)).Await(nil)
	}, "")
	fail := func(id int64) *history.Event {
		return &history.Event{Type: history.TaskFailed, TaskID: id, Failure: &FailureDetails{Message: "flaky"}}
	}
	var waits []time.Duration
	for attempt := int32(1); attempt <= 3; attempt++ {
		act := d.action(history.TaskScheduled)
		if act.Attempt != attempt {
			t.Fatalf("attempt %d scheduled as %d", attempt, act.Attempt)
		}
		turnTime := d.hist[len(d.hist)-len(d.turn.Events)].Timestamp
		d.apply(fail(act.TaskID))
		if attempt == 3 {
			break
		}
		timer := d.action(history.TimerCreated)
		waits = append(waits, timer.FireAt.Sub(turnTime.Add(time.Second)))
		d.apply(fired(timer))
	}
	if fmt.Sprint(waits) != "[1s 2s]" {
		t.Fatalf("waits %v", waits)
	}
	if !d.turn.Done || d.turn.Failure == nil || !strings.Contains(d.turn.Failure.Message, "flaky") {
		t.Fatalf("%+v", d.turn)
	}
}

func TestRetrySucceedsAndRespectsThePredicate(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 5, Handle: func(err error) bool {
		var tf *TaskFailedError
		return errors.As(err, &tf) && tf.Failure.ErrorType == "Transient"
	}}
	d := newDriver(t, func(ctx *Context) (any, error) {
		v, err := Await[int](ctx.CallActivity("A", nil, WithRetry(policy)))
		if err != nil {
			return nil, err
		}
		err = ctx.CallActivity("B", nil, WithRetry(policy)).Await(nil)
		return fmt.Sprint(v, err != nil), nil
	}, "")
	a := d.action(history.TaskScheduled)
	d.apply(&history.Event{Type: history.TaskFailed, TaskID: a.TaskID, Failure: &FailureDetails{ErrorType: "Transient"}})
	d.apply(fired(d.action(history.TimerCreated)))
	d.apply(completed(d.action(history.TaskScheduled).TaskID, "7"))
	b := d.action(history.TaskScheduled)
	turn := d.apply(&history.Event{Type: history.TaskFailed, TaskID: b.TaskID, Failure: &FailureDetails{ErrorType: "Permanent"}})
	if string(turn.Output) != `"7 true"` {
		t.Fatalf("output %s", turn.Output)
	}
}

func TestSuspendedExecutionHoldsEventsUntilResumed(t *testing.T) {
	d := newDriver(t, func(ctx *Context) (any, error) {
		return Await[string](ctx.WaitForExternalEvent("Go"))
	}, "")
	turn := d.apply(&history.Event{Type: history.ExecutionSuspended}, raised("Go", `"now"`))
	if turn.Done || !turn.Suspended {
		t.Fatalf("%+v", turn)
	}
	turn = d.apply(&history.Event{Type: history.ExecutionResumed})
	if !turn.Done || string(turn.Output) != `"now"` || turn.Suspended {
		t.Fatalf("%+v", turn)
	}
}

func TestReplayDetectsATimerWhereAnActivityWasRecorded(t *testing.T) {
	hist, _ := runLive(t, helloCities, nil, hello)
	e := NewExecution("inst", "exec", func(ctx *Context) (any, error) {
		return nil, ctx.CreateTimer(time.Second).Await(nil)
	}, nil)
	defer e.Close()
	turn, _ := e.Replay(hist)
	if turn.Failure == nil || !strings.Contains(turn.Failure.Message, "TimerCreated") {
		t.Fatalf("%+v", turn.Failure)
	}
}

func TestWaitWithTimeoutEndsAndIsWithdrawnOrTakesAnEventInTime(t *testing.T) {
	// The code waits for "Go" for a minute, then for the next "Go" without
	// a timeout, and reports what each wait got.
	waitTwice := func(ctx *Context) (any, error) {
		var first, second string
		err := ctx.WaitForExternalEvent("Go", WithTimeout(time.Minute)).Await(&first)
		var te *TimeoutError
		switch {
		case errors.Is(err, ErrTimeout) && errors.As(err, &te) && te.Event == "Go" && te.After == time.Minute:
			first = "timeout"
		case err != nil:
			return nil, err
		}
		if err := ctx.WaitForExternalEvent("Go").Await(&second); err != nil {
			return nil, err
		}
		return first + "," + second, nil
	}
	tests := []struct {
		name  string
		turns func(timer *history.Event) [][]*history.Event
		want  string
	}{
		{"the timer fires first", func(timer *history.Event) [][]*history.Event {
			return [][]*history.Event{{fired(timer)}, {raised("go", `"a"`)}}
		}, `"timeout,a"`},
		{"the event comes in time, the timer fires later", func(timer *history.Event) [][]*history.Event {
			return [][]*history.Event{{raised("Go", `"a"`)}, {fired(timer)}, {raised("Go", `"b"`)}}
		}, `"a,b"`},
		{"both in one turn, the timer recorded first", func(timer *history.Event) [][]*history.Event {
			return [][]*history.Event{{fired(timer), raised("Go", `"a"`)}}
		}, `"timeout,a"`},
		{"both in one turn, the event recorded first", func(timer *history.Event) [][]*history.Event {
			return [][]*history.Event{{raised("Go", `"a"`), fired(timer)}, {raised("Go", `"b"`)}}
		}, `"a,b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, waitTwice, "")
			timer := d.action(history.TimerCreated)
			if !timer.FireAt.Equal(t0.Add(time.Second + time.Minute)) {
				t.Fatalf("timer at %v", timer.FireAt)
			}
			for _, events := range tt.turns(timer) {
				d.apply(events...) // each turn is also replayed from history
			}
			if !d.turn.Done || string(d.turn.Output) != tt.want {
				t.Fatalf("done %v, output %s %+v, want %s", d.turn.Done, d.turn.Output, d.turn.Failure, tt.want)
			}
		})
	}
}
