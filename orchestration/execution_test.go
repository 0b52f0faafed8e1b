package orchestration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable/history"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func helloCities(ctx *Context) (any, error) {
	var out []string
	for _, city := range []string{"Tokyo", "Seattle", "London"} {
		s, err := Await[string](ctx.CallActivity("Hello", city))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func started(name string, input any) []*history.Event {
	b, _ := json.Marshal(input)
	return []*history.Event{
		{Type: history.OrchestratorStarted, Timestamp: t0},
		{Type: history.ExecutionStarted, Timestamp: t0, Name: name, Payload: b},
	}
}

func turnStart(i int) *history.Event {
	return &history.Event{Type: history.OrchestratorStarted, Timestamp: t0.Add(time.Duration(i) * time.Second)}
}

// runLive drives fn to completion the way the actor does, answering every
// TaskScheduled with answer(name, input), one turn per result, and returns
// the whole history and the last turn.
func runLive(t *testing.T, fn Orchestrator, input any, answer func(name string, input []byte) *history.Event) ([]*history.Event, *Turn) {
	t.Helper()
	e := NewExecution("inst", "exec", fn, nil)
	defer e.Close()
	var hist []*history.Event
	turn, err := e.Apply(started("Test", input))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		hist = append(hist, turn.Events...)
		if turn.Done {
			return hist, turn
		}
		if len(turn.Actions) == 0 {
			t.Fatalf("turn %d: not done and nothing scheduled", i)
		}
		in := []*history.Event{turnStart(i)}
		for _, a := range turn.Actions {
			res := answer(a.Name, a.Payload)
			res.TaskID = a.TaskID
			in = append(in, res)
		}
		if turn, err = e.Apply(in); err != nil {
			t.Fatal(err)
		}
	}
}

func hello(name string, input []byte) *history.Event {
	var city string
	_ = json.Unmarshal(input, &city)
	out, _ := json.Marshal("Hello " + city + "!")
	return &history.Event{Type: history.TaskCompleted, Payload: out}
}

func TestHelloCitiesRunsActivitiesInSequenceAndReturnsTheirResults(t *testing.T) {
	hist, turn := runLive(t, helloCities, nil, hello)
	if turn.Failure != nil {
		t.Fatal(turn.Failure)
	}
	if got, want := string(turn.Output), `["Hello Tokyo!","Hello Seattle!","Hello London!"]`; got != want {
		t.Fatalf("output %s, want %s", got, want)
	}
	var types []string
	for _, ev := range hist {
		types = append(types, ev.Type.String())
	}
	want := "OrchestratorStarted ExecutionStarted TaskScheduled OrchestratorStarted TaskCompleted TaskScheduled " +
		"OrchestratorStarted TaskCompleted TaskScheduled OrchestratorStarted TaskCompleted ExecutionCompleted"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("history:\n got %s\nwant %s", got, want)
	}
}

func TestReplayOfPartialHistoryRebuildsStateWithoutNewActions(t *testing.T) {
	hist, _ := runLive(t, helloCities, nil, hello)
	// Cut after the second TaskScheduled: Tokyo done, Seattle pending.
	partial := hist[:6]
	e := NewExecution("inst", "exec", helloCities, nil)
	defer e.Close()
	turn, err := e.Replay(partial)
	if err != nil {
		t.Fatal(err)
	}
	if turn.Done || len(turn.Events) != 0 || len(turn.Actions) != 0 {
		t.Fatalf("replay produced %+v", turn)
	}
	open := e.OpenTasks()
	if len(open) != 1 || open[0].TaskID != 1 || string(open[0].Payload) != `"Seattle"` {
		t.Fatalf("open activities after replay: %+v", open)
	}
	// The live continuation: Seattle's result arrives.
	res := hello("Hello", []byte(`"Seattle"`))
	res.TaskID = 1
	turn, err = e.Apply([]*history.Event{turnStart(9), res})
	if err != nil {
		t.Fatal(err)
	}
	if len(turn.Actions) != 1 || turn.Actions[0].Name != "Hello" || string(turn.Actions[0].Payload) != `"London"` {
		t.Fatalf("actions after replay: %+v", turn.Actions)
	}
	if !turn.Actions[0].Timestamp.Equal(t0.Add(9 * time.Second)) {
		t.Fatalf("new action stamped %v, want the turn's time", turn.Actions[0].Timestamp)
	}
}

func TestReplayOfWholeHistoryEndsCompletedWithTheSameOutput(t *testing.T) {
	hist, live := runLive(t, helloCities, nil, hello)
	e := NewExecution("inst", "exec", helloCities, nil)
	defer e.Close()
	turn, err := e.Replay(hist)
	if err != nil {
		t.Fatal(err)
	}
	if !turn.Done || !bytes.Equal(turn.Output, live.Output) || len(turn.Events) != 0 {
		t.Fatalf("replay: %+v", turn)
	}
}

func TestNonDeterminismIsReported(t *testing.T) {
	hist, _ := runLive(t, helloCities, nil, hello)
	cases := []struct {
		name     string
		fn       Orchestrator
		contains []string
	}{
		{
			name: "different activity name",
			fn: func(ctx *Context) (any, error) {
				return nil, ctx.CallActivity("Goodbye", "Tokyo").Await(nil)
			},
			contains: []string{"history event 2", `TaskScheduled(name="Hello", taskId=0)`, `TaskScheduled(name="Goodbye", taskId=0)`},
		},
		{
			name: "no activity at all",
			fn: func(ctx *Context) (any, error) {
				return "done", nil
			},
			contains: []string{"history event 2", `TaskScheduled(name="Hello", taskId=0)`, "asked for ExecutionCompleted"},
		},
		{
			name: "an extra activity",
			fn: func(ctx *Context) (any, error) {
				ctx.CallActivity("Extra", nil)
				return helloCities(ctx)
			},
			contains: []string{"history event 2", `TaskScheduled(name="Hello", taskId=0)`, `TaskScheduled(name="Extra", taskId=0)`},
		},
		{
			name: "an activity history never recorded",
			fn: func(ctx *Context) (any, error) {
				if _, err := helloCities(ctx); err != nil {
					return nil, err
				}
				return nil, ctx.CallActivity("More", nil).Await(nil)
			},
			contains: []string{"history event 11", "ExecutionCompleted", `TaskScheduled(name="More", taskId=3)`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := NewExecution("inst", "exec", tc.fn, nil)
			defer e.Close()
			turn, err := e.Replay(hist)
			if err != nil {
				t.Fatal(err)
			}
			if !turn.Done || turn.Failure == nil {
				t.Fatalf("want a failed execution, got %+v", turn)
			}
			if turn.Failure.ErrorType != ErrorTypeNonDeterminism {
				t.Fatalf("error type %q", turn.Failure.ErrorType)
			}
			for _, s := range tc.contains {
				if !strings.Contains(turn.Failure.Message, s) {
					t.Errorf("message %q lacks %q", turn.Failure.Message, s)
				}
			}
			if len(turn.Events) != 1 || turn.Events[0].Type != history.ExecutionCompleted {
				t.Fatalf("want one ExecutionCompleted event to append, got %+v", turn.Events)
			}
		})
	}
}

func TestHandledActivityFailureLetsTheOrchestratorGoOn(t *testing.T) {
	fn := func(ctx *Context) (any, error) {
		err := ctx.CallActivity("Flaky", nil).Await(nil)
		var tf *TaskFailedError
		if !errors.As(err, &tf) {
			return nil, fmt.Errorf("want TaskFailedError, got %v", err)
		}
		return "recovered from " + tf.Failure.Message + " in " + tf.TaskName, nil
	}
	_, turn := runLive(t, fn, nil, func(string, []byte) *history.Event {
		return &history.Event{Type: history.TaskFailed, Failure: &FailureDetails{ErrorType: "*errors.errorString", Message: "boom"}}
	})
	if turn.Failure != nil || string(turn.Output) != `"recovered from boom in Flaky"` {
		t.Fatalf("turn %+v failure %v", turn, turn.Failure)
	}
}

func TestUnhandledActivityFailureFailsTheInstanceWithItsDetails(t *testing.T) {
	fn := func(ctx *Context) (any, error) {
		return nil, ctx.CallActivity("Flaky", nil).Await(nil)
	}
	_, turn := runLive(t, fn, nil, func(string, []byte) *history.Event {
		return &history.Event{Type: history.TaskFailed, Failure: &FailureDetails{ErrorType: "MyError", Message: "boom"}}
	})
	if turn.Failure == nil || turn.Failure.ErrorType != "*orchestration.TaskFailedError" ||
		!strings.Contains(turn.Failure.Message, "boom") || turn.Failure.Inner == nil || turn.Failure.Inner.ErrorType != "MyError" {
		t.Fatalf("failure %+v", turn.Failure)
	}
}

func TestPanicInOrchestratorFailsTheInstanceWithMessageAndStack(t *testing.T) {
	fn := func(ctx *Context) (any, error) {
		var m map[string]int
		m["x"] = 1 // nil map write
		return nil, nil
	}
	e := NewExecution("inst", "exec", fn, nil)
	defer e.Close()
	turn, err := e.Apply(started("Panicky", nil))
	if err != nil {
		t.Fatal(err)
	}
	if !turn.Done || turn.Failure == nil || turn.Failure.ErrorType != ErrorTypePanic ||
		!strings.Contains(turn.Failure.Message, "nil map") || !strings.Contains(turn.Failure.StackTrace, "execution_test.go") {
		t.Fatalf("failure %+v", turn.Failure)
	}
}

func TestPanicAfterAnAwaitFailsTheInstance(t *testing.T) {
	fn := func(ctx *Context) (any, error) {
		_ = ctx.CallActivity("A", nil).Await(nil)
		panic("after await")
	}
	_, turn := runLive(t, fn, nil, func(string, []byte) *history.Event { return &history.Event{Type: history.TaskCompleted} })
	if turn.Failure == nil || turn.Failure.Message != "after await" {
		t.Fatalf("failure %+v", turn.Failure)
	}
}

func TestNowAndNewUUIDAreTheSameOnReplay(t *testing.T) {
	var seen []string
	fn := func(ctx *Context) (any, error) {
		a := ctx.NewUUID().String()
		now1 := ctx.Now()
		if err := ctx.CallActivity("A", nil).Await(nil); err != nil {
			return nil, err
		}
		b := ctx.NewUUID().String()
		seen = append(seen, a, b, now1.Format(time.RFC3339), ctx.Now().Format(time.RFC3339))
		return []string{a, b}, nil
	}
	hist, live := runLive(t, fn, nil, func(string, []byte) *history.Event { return &history.Event{Type: history.TaskCompleted} })
	firstRun := append([]string(nil), seen...)
	seen = nil
	e := NewExecution("inst", "exec", fn, nil)
	defer e.Close()
	turn, _ := e.Replay(hist)
	if !bytes.Equal(turn.Output, live.Output) || strings.Join(seen, ",") != strings.Join(firstRun, ",") {
		t.Fatalf("replay saw %v, first run %v", seen, firstRun)
	}
	if firstRun[0] == firstRun[1] {
		t.Fatal("two NewUUID calls returned the same id")
	}
	if firstRun[2] != t0.Format(time.RFC3339) || firstRun[3] != t0.Add(time.Second).Format(time.RFC3339) {
		t.Fatalf("Now: %v", firstRun[2:])
	}
}

func TestLoggerDropsRecordsWhileReplaying(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	var replayFlags []bool
	fn := func(ctx *Context) (any, error) {
		replayFlags = append(replayFlags, ctx.IsReplaying())
		ctx.Logger().Info("before")
		if err := ctx.CallActivity("A", nil).Await(nil); err != nil {
			return nil, err
		}
		replayFlags = append(replayFlags, ctx.IsReplaying())
		ctx.Logger().Info("after")
		return nil, nil
	}
	first := NewExecution("inst", "exec", fn, logger)
	turn, _ := first.Apply(started("Log", nil))
	hist := turn.Events
	first.Close()
	if strings.Count(buf.String(), "msg=before") != 1 {
		t.Fatalf("log: %s", buf.String())
	}
	buf.Reset()
	replayFlags = nil
	e := NewExecution("inst", "exec", fn, logger)
	defer e.Close()
	if _, err := e.Replay(hist); err != nil {
		t.Fatal(err)
	}
	res := &history.Event{Type: history.TaskCompleted, TaskID: 0}
	if _, err := e.Apply([]*history.Event{turnStart(1), res}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); strings.Contains(got, "msg=before") || !strings.Contains(got, "msg=after") || !strings.Contains(got, "instanceId=inst") {
		t.Fatalf("log after replay: %s", got)
	}
	if fmt.Sprint(replayFlags) != "[true false]" {
		t.Fatalf("IsReplaying: %v", replayFlags)
	}
}

func TestDuplicateResultIsIgnored(t *testing.T) {
	fn := func(ctx *Context) (any, error) {
		a, _ := Await[int](ctx.CallActivity("A", nil))
		b, _ := Await[int](ctx.CallActivity("B", nil))
		return a + b, nil
	}
	e := NewExecution("inst", "exec", fn, nil)
	defer e.Close()
	if _, err := e.Apply(started("Dup", nil)); err != nil {
		t.Fatal(err)
	}
	r := func(id int64, v string) *history.Event {
		return &history.Event{Type: history.TaskCompleted, TaskID: id, Payload: []byte(v)}
	}
	turn, _ := e.Apply([]*history.Event{turnStart(1), r(0, "1")})
	if e.IsOpen(0) || !e.IsOpen(1) || len(turn.Actions) != 1 {
		t.Fatalf("after first result: %+v", turn)
	}
	turn, _ = e.Apply([]*history.Event{turnStart(2), r(0, "100"), r(1, "2")})
	if string(turn.Output) != "3" {
		t.Fatalf("output %s, want 3", turn.Output)
	}
}

func TestApplyRejectsEventsThatRecordActions(t *testing.T) {
	e := NewExecution("inst", "exec", helloCities, nil)
	defer e.Close()
	_, err := e.Apply([]*history.Event{{Type: history.TaskScheduled, Name: "X"}})
	if err == nil {
		t.Fatal("want an error")
	}
}

func TestApplyAfterCompletionIsAnError(t *testing.T) {
	e := NewExecution("inst", "exec", func(*Context) (any, error) { return 1, nil }, nil)
	defer e.Close()
	if turn, _ := e.Apply(started("One", nil)); !turn.Done {
		t.Fatal("not done")
	}
	if _, err := e.Apply([]*history.Event{turnStart(1)}); !errors.Is(err, ErrExecutionDone) {
		t.Fatalf("err %v", err)
	}
}

func TestCloseStopsTheBlockedOrchestratorGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	var execs []*Execution
	for i := 0; i < 50; i++ {
		e := NewExecution(fmt.Sprint(i), "x", helloCities, nil)
		if _, err := e.Apply(started("Hello", nil)); err != nil {
			t.Fatal(err)
		}
		execs = append(execs, e)
	}
	if n := runtime.NumGoroutine(); n < before+45 {
		t.Fatalf("orchestrators not running: %d goroutines, %d before", n, before)
	}
	for _, e := range execs {
		e.Close()
	}
	goroutinesBackTo(t, before)
}

func TestDeferInOrchestratorRunsWhenClosed(t *testing.T) {
	ran := make(chan struct{})
	fn := func(ctx *Context) (any, error) {
		defer close(ran)
		return nil, ctx.CallActivity("A", nil).Await(nil)
	}
	e := NewExecution("inst", "exec", fn, nil)
	if _, err := e.Apply(started("Defer", nil)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	select {
	case <-ran:
	default:
		t.Fatal("deferred call did not run")
	}
}

// goroutinesBackTo waits up to 2 s for the goroutine count to fall to
// before, and fails with how many are left.
func goroutinesBackTo(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left behind", n-before)
	}
}

// The code's goroutine ends in ways the engine does not ask for: the code
// calls runtime.Goexit (t.FailNow in a test), or, while Close makes it
// exit, a deferred call of the code waits for another task. Either way
// the turn ends, Close returns and no goroutine stays.
func TestOrchestratorGoroutineThatExitsOnItsOwnOrWaitsWhileClosedLeavesNothingBehind(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fn       Orchestrator
		answer   bool // complete the first turn's activity in a second turn
		wantFail bool // the last turn fails: the goroutine exited without returning
	}{
		{"Goexit in the code", func(ctx *Context) (any, error) {
			_ = ctx.CallActivity("A", nil) // scheduled, then the goroutine leaves
			runtime.Goexit()
			return nil, nil
		}, false, true},
		{"Goexit after a wait", func(ctx *Context) (any, error) {
			if err := ctx.CallActivity("A", nil).Await(nil); err != nil {
				return nil, err
			}
			runtime.Goexit()
			return nil, nil
		}, true, true},
		{"a deferred wait while closed", func(ctx *Context) (any, error) {
			defer func() { _ = ctx.CallActivity("Cleanup", nil).Await(nil) }()
			return nil, ctx.CallActivity("A", nil).Await(nil)
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			e := NewExecution("inst", "exec", tc.fn, nil)
			turn, err := e.Apply(started("Exit", nil))
			if err != nil {
				t.Fatal(err)
			}
			if tc.answer {
				if turn.Done || len(turn.Actions) != 1 {
					t.Fatalf("first turn: done %v, %d actions", turn.Done, len(turn.Actions))
				}
				done := &history.Event{Type: history.TaskCompleted, TaskID: turn.Actions[0].TaskID, Payload: []byte("null")}
				if turn, err = e.Apply([]*history.Event{turnStart(1), done}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.wantFail {
				if !turn.Done || turn.Failure == nil || !strings.Contains(turn.Failure.Message, "exited without returning") {
					t.Fatalf("turn done %v failure %+v, want a failure: exited without returning", turn.Done, turn.Failure)
				}
			} else if turn.Done {
				t.Fatalf("the turn ended the execution: %+v", turn.Failure)
			}
			e.Close()
			e.Close() // a second Close does nothing
			goroutinesBackTo(t, before)
		})
	}
}

func TestManyEventsCostConstantWorkEach(t *testing.T) {
	// 2000 sequential activities: each turn must touch only the new events.
	const n = 2000
	fn := func(ctx *Context) (any, error) {
		sum := 0
		for i := 0; i < n; i++ {
			v, err := Await[int](ctx.CallActivity("One", i))
			if err != nil {
				return nil, err
			}
			sum += v
		}
		return sum, nil
	}
	_, turn := runLive(t, fn, nil, func(string, []byte) *history.Event {
		return &history.Event{Type: history.TaskCompleted, Payload: []byte("1")}
	})
	if string(turn.Output) != fmt.Sprint(n) {
		t.Fatalf("output %s", turn.Output)
	}
}

func BenchmarkReplayPerEvent(b *testing.B) {
	fn := func(ctx *Context) (any, error) {
		for i := 0; i < 1000; i++ {
			if err := ctx.CallActivity("One", nil).Await(nil); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	var hist []*history.Event
	e := NewExecution("inst", "exec", fn, nil)
	turn, _ := e.Apply(started("B", nil))
	for i := 1; !turn.Done; i++ {
		hist = append(hist, turn.Events...)
		turn, _ = e.Apply([]*history.Event{turnStart(i), {Type: history.TaskCompleted, TaskID: turn.Actions[0].TaskID}})
	}
	hist = append(hist, turn.Events...)
	e.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := NewExecution("inst", "exec", fn, nil)
		if turn, _ := r.Replay(hist); !turn.Done {
			b.Fatal("not done")
		}
		r.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hist)), "ns/event")
}

// TestOptionalInputTakesNothingNullAndEmptyStringAsNoInput: the three ways
// a caller leaves an input out leave the value alone and report false; any
// other input is decoded, and a wrong one is an error.
func TestOptionalInputTakesNothingNullAndEmptyStringAsNoInput(t *testing.T) {
	for _, tc := range []struct {
		input   string
		present bool
		want    []string
		wantErr bool
	}{
		{``, false, []string{"default"}, false},
		{`null`, false, []string{"default"}, false},
		{`""`, false, []string{"default"}, false},
		{` "" `, false, []string{"default"}, false},
		{`[]`, true, []string{}, false},
		{`["Oslo"]`, true, []string{"Oslo"}, false},
		{`"Oslo"`, true, nil, true},
		{`7`, true, nil, true},
	} {
		t.Run(fmt.Sprintf("%q", tc.input), func(t *testing.T) {
			fn := func(ctx *Context) (any, error) {
				v := []string{"default"}
				present, err := ctx.OptionalInput(&v)
				if err != nil {
					return nil, err
				}
				return map[string]any{"present": present, "v": v}, nil
			}
			e := NewExecution("inst", "exec", fn, nil)
			defer e.Close()
			turn, err := e.Apply([]*history.Event{
				{Type: history.OrchestratorStarted, Timestamp: t0},
				{Type: history.ExecutionStarted, Timestamp: t0, Name: "Test", Payload: []byte(tc.input)},
			})
			if err != nil {
				t.Fatal(err)
			}
			if !turn.Done {
				t.Fatal("not done")
			}
			if tc.wantErr {
				if turn.Failure == nil {
					t.Fatalf("input %s decoded without error: %s", tc.input, turn.Output)
				}
				return
			}
			if turn.Failure != nil {
				t.Fatalf("failed: %v", turn.Failure)
			}
			want, _ := json.Marshal(map[string]any{"present": tc.present, "v": tc.want})
			if !bytes.Equal(turn.Output, want) {
				t.Fatalf("output %s, want %s", turn.Output, want)
			}
		})
	}
}
