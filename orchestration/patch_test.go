package orchestration

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/durable-go/durable/history"
)

// here returns the file:line of its caller, to compare with the call sites
// that non-determinism errors name.
func here() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s:%d", file, line)
}

// mark sets *site to the file:line of its caller and returns true: for a
// call on the same line that never returns (it blocks, or replay ends there).
func mark(site *string) bool {
	_, file, line, _ := runtime.Caller(1)
	*site = fmt.Sprintf("%s:%d", file, line)
	return true
}

// done answers every activity with "<name> done".
func done(name string, _ []byte) *history.Event {
	out, _ := json.Marshal(name + " done")
	return &history.Event{Type: history.TaskCompleted, Payload: out}
}

// A change of an orchestrator through its patch steps: after a first
// activity it takes the old path (activity Old) or the new one (New), and
// returns the branch's result.
func branching(patched func(ctx *Context) bool) Orchestrator {
	return func(ctx *Context) (any, error) {
		if err := ctx.CallActivity("Start", nil).Await(nil); err != nil {
			return nil, err
		}
		path := "Old"
		if patched(ctx) {
			path = "New"
		}
		return Await[string](ctx.CallActivity(path, nil))
	}
}

var (
	oldCode        = branching(func(ctx *Context) bool { return false })
	patchedCode    = branching(func(ctx *Context) bool { return ctx.IsPatched("v2") })
	deprecatedCode = branching(func(ctx *Context) bool { ctx.DeprecatePatch("v2"); return true })
	finalCode      = branching(func(ctx *Context) bool { return true })
)

func historyTypes(events []*history.Event) string {
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type.String())
	}
	return strings.Join(types, " ")
}

func TestNewExecutionRecordsThePatchMarkerAndTakesTheNewPath(t *testing.T) {
	d := newDriver(t, patchedCode, "")
	d.apply(completed(d.action(history.TaskScheduled).TaskID, `"started"`))
	var marker *history.Event
	for _, ev := range d.turn.Events {
		if ev.Type == history.PatchMarker {
			marker = ev
		}
	}
	if marker == nil || marker.Name != "v2" || !marker.Timestamp.Equal(d.turn.Events[0].Timestamp) {
		t.Fatalf("no PatchMarker v2 stamped with the turn's time in %s", historyTypes(d.turn.Events))
	}
	if got, want := historyTypes(d.turn.Events), "OrchestratorStarted TaskCompleted PatchMarker TaskScheduled"; got != want {
		t.Fatalf("turn events %s, want %s", got, want)
	}
	if len(d.turn.Actions) != 1 || d.turn.Actions[0].Name != "New" {
		t.Fatalf("actions %+v, want only activity New (a marker asks for no work)", d.turn.Actions)
	}
	d.apply(completed(d.action(history.TaskScheduled).TaskID, `"new"`))
	if !d.turn.Done || string(d.turn.Output) != `"new"` {
		t.Fatalf("turn %+v", d.turn)
	}
}

func TestReplayWithoutTheMarkerTakesTheOldPathAndRecordsNothing(t *testing.T) {
	// Written by the old code: Start done, Old scheduled.
	hist, _ := runLive(t, oldCode, nil, done)
	partial := hist[:6]
	if got := historyTypes(partial); !strings.HasSuffix(got, "TaskCompleted TaskScheduled") {
		t.Fatalf("partial history %s", got)
	}
	for _, tc := range []struct {
		name string
		fn   Orchestrator
	}{
		{"asked once", patchedCode},
		{"asked again after the old path's activity", func(ctx *Context) (any, error) {
			if _, err := patchedCode(ctx); err != nil {
				return nil, err
			}
			if ctx.IsPatched("v2") || ctx.IsPatched("v2") {
				return "switched", nil
			}
			return "stayed", nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewExecution("inst", "exec", tc.fn, nil)
			defer e.Close()
			turn, err := e.Replay(partial)
			if err != nil {
				t.Fatal(err)
			}
			if turn.Failure != nil || len(turn.Events) != 0 {
				t.Fatalf("replay: failure %v, events %s", turn.Failure, historyTypes(turn.Events))
			}
			open := e.OpenTasks()
			if len(open) != 1 || open[0].Name != "Old" {
				t.Fatalf("open tasks %+v, want activity Old", open)
			}
			// The code goes on live: the answer stays false, and nothing is
			// recorded for it.
			turn, err = e.Apply([]*history.Event{turnStart(9), completed(open[0].TaskID, `"old"`)})
			if err != nil {
				t.Fatal(err)
			}
			if got := historyTypes(turn.Events); got != "OrchestratorStarted TaskCompleted ExecutionCompleted" {
				t.Fatalf("live turn %s", got)
			}
			if out := string(turn.Output); out != `"old"` && out != `"stayed"` {
				t.Fatalf("output %s", out)
			}
		})
	}
}

// Each step's code against the histories every step writes: which replay
// and which fail.
func TestPatchStepsReplayTheHistoriesOfTheirNeighbours(t *testing.T) {
	codes := map[string]Orchestrator{"old": oldCode, "patched": patchedCode, "deprecated": deprecatedCode, "final": finalCode}
	histories := map[string][]*history.Event{}
	outputs := map[string]string{}
	for name, fn := range codes {
		hist, turn := runLive(t, fn, nil, done)
		histories[name], outputs[name] = hist, string(turn.Output)
	}
	if got := historyTypes(histories["patched"]); !strings.Contains(got, "TaskCompleted PatchMarker TaskScheduled") {
		t.Fatalf("patched history %s", got)
	}
	if strings.Contains(historyTypes(histories["deprecated"]), "PatchMarker") {
		t.Fatalf("DeprecatePatch recorded a marker: %s", historyTypes(histories["deprecated"]))
	}
	for _, tc := range []struct {
		history, code string
		fails         []string // nil: replays to the history's output
	}{
		{history: "old", code: "patched"},
		{history: "patched", code: "patched"},
		{history: "patched", code: "deprecated"},
		{history: "deprecated", code: "deprecated"},
		{history: "deprecated", code: "final"},
		{history: "old", code: "deprecated", fails: []string{"history event 5", `TaskScheduled(name="Old", taskId=1)`, `TaskScheduled(name="New", taskId=1)`}},
		{history: "patched", code: "old", fails: []string{"history event 5", `holds PatchMarker(name="v2")`, `TaskScheduled(name="Old", taskId=1)`}},
		{history: "patched", code: "final", fails: []string{"history event 5", `holds PatchMarker(name="v2")`, `TaskScheduled(name="New", taskId=1)`}},
	} {
		t.Run(tc.code+" code replays the "+tc.history+" history", func(t *testing.T) {
			e := NewExecution("inst", "exec", codes[tc.code], nil)
			defer e.Close()
			turn, err := e.Replay(histories[tc.history])
			if err != nil {
				t.Fatal(err)
			}
			if tc.fails == nil {
				if turn.Failure != nil || len(turn.Events) != 0 || !turn.Done || string(turn.Output) != outputs[tc.history] {
					t.Fatalf("replay: failure %v, events %s, output %s", turn.Failure, historyTypes(turn.Events), turn.Output)
				}
				return
			}
			if turn.Failure == nil || turn.Failure.ErrorType != ErrorTypeNonDeterminism {
				t.Fatalf("want a non-determinism failure, got %+v", turn.Failure)
			}
			for _, s := range tc.fails {
				if !strings.Contains(turn.Failure.Message, s) {
					t.Errorf("message %q lacks %q", turn.Failure.Message, s)
				}
			}
		})
	}
}

func TestAMarkerTheCodeDoesNotAskForFailsReplay(t *testing.T) {
	hist, _ := runLive(t, patchedCode, nil, done)
	renamed := branching(func(ctx *Context) bool { return ctx.IsPatched("v3") })
	e := NewExecution("inst", "exec", renamed, nil)
	defer e.Close()
	turn, err := e.Replay(hist)
	if err != nil {
		t.Fatal(err)
	}
	// v3 is not recorded: the old path; then history holds v2's marker
	// where the code asks for activity Old.
	if turn.Failure == nil || turn.Failure.ErrorType != ErrorTypeNonDeterminism {
		t.Fatalf("want a non-determinism failure, got %+v", turn.Failure)
	}
	want := `at history event 5 the history holds PatchMarker(name="v2") but the code asked for TaskScheduled(name="Old", taskId=1)`
	if !strings.Contains(turn.Failure.Message, want) || !strings.Contains(turn.Failure.Message, "(orchestrator call at "+engineDir+"/patch_test.go:") {
		t.Fatalf("message %q lacks %q or the call site", turn.Failure.Message, want)
	}
}

func TestAPatchAskedBeforeWhereItWasRecordedFailsAtTheCall(t *testing.T) {
	// Recorded: activity A scheduled, then the marker.
	hist, _ := runLive(t, func(ctx *Context) (any, error) {
		a := ctx.CallActivity("A", nil)
		ctx.IsPatched("v2")
		return nil, a.Await(nil)
	}, nil, done)
	if got := historyTypes(hist[:4]); got != "OrchestratorStarted ExecutionStarted TaskScheduled PatchMarker" {
		t.Fatalf("history %s", got)
	}
	var site string
	e := NewExecution("inst", "exec", func(ctx *Context) (any, error) {
		_ = mark(&site) && ctx.IsPatched("v2")
		return nil, ctx.CallActivity("A", nil).Await(nil)
	}, nil)
	defer e.Close()
	turn, err := e.Replay(hist)
	if err != nil {
		t.Fatal(err)
	}
	if turn.Failure == nil || turn.Failure.ErrorType != ErrorTypeNonDeterminism {
		t.Fatalf("want a non-determinism failure, got %+v", turn.Failure)
	}
	for _, s := range []string{
		`at history event 2 the history holds TaskScheduled(name="A", taskId=0) (PatchMarker(name="v2") is at history event 3)`,
		`asked for PatchMarker(name="v2")`,
		"(orchestrator call at " + site + ")",
	} {
		if !strings.Contains(turn.Failure.Message, s) {
			t.Errorf("message %q lacks %q", turn.Failure.Message, s)
		}
	}
	if len(turn.Events) != 1 || turn.Events[0].Type != history.ExecutionCompleted {
		t.Fatalf("want one ExecutionCompleted event to append, got %s", historyTypes(turn.Events))
	}
}

func TestNonDeterminismErrorNamesTheFileAndLineOfTheDivergingCall(t *testing.T) {
	hist, _ := runLive(t, helloCities, nil, hello)
	var site string
	cases := []struct {
		name string
		fn   Orchestrator
	}{
		{"a different activity", func(ctx *Context) (any, error) {
			var task Task
			task, site = ctx.CallActivity("Goodbye", "Tokyo"), here()
			return nil, task.Await(nil)
		}},
		{"a timer through Await[T]", func(ctx *Context) (any, error) {
			var task Task
			task, site = ctx.CreateTimer(0), here()
			_, err := Await[string](task)
			return nil, err
		}},
		{"an activity with retries", func(ctx *Context) (any, error) {
			var task Task
			task, site = ctx.CallActivity("Other", nil, WithRetry(RetryPolicy{MaxAttempts: 3})), here()
			return nil, task.Await(nil)
		}},
		{"a sub-orchestration", func(ctx *Context) (any, error) {
			var task Task
			task, site = ctx.CallSubOrchestrator("Child", nil), here()
			return nil, task.Await(nil)
		}},
		{"a wait for an event: the Await blocked", func(ctx *Context) (any, error) {
			task := ctx.WaitForExternalEvent("go")
			_ = mark(&site) && task.Await(nil) == nil
			return nil, nil
		}},
		{"an activity history never recorded", func(ctx *Context) (any, error) {
			if _, err := helloCities(ctx); err != nil {
				return nil, err
			}
			var task Task
			task, site = ctx.CallActivity("More", nil), here()
			return nil, task.Await(nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			site = ""
			e := NewExecution("inst", "exec", tc.fn, nil)
			defer e.Close()
			turn, err := e.Replay(hist)
			if err != nil {
				t.Fatal(err)
			}
			if turn.Failure == nil || turn.Failure.ErrorType != ErrorTypeNonDeterminism {
				t.Fatalf("want a non-determinism failure, got %+v", turn.Failure)
			}
			if !strings.HasPrefix(site, engineDir+"/patch_test.go:") {
				t.Fatalf("site %q", site)
			}
			if want := "(orchestrator call at " + site + ")"; !strings.HasSuffix(turn.Failure.Message, want) {
				t.Fatalf("message %q does not end with %q", turn.Failure.Message, want)
			}
		})
	}
}

func TestNonDeterminismErrorWithoutACallSiteKeepsItsText(t *testing.T) {
	e := &NonDeterminismError{Position: 3, Recorded: "A", Requested: "B"}
	want := "non-deterministic orchestrator: at history event 3 the history holds A but the code asked for B"
	if e.Error() != want {
		t.Fatalf("%q", e.Error())
	}
	e.CallSite = "x.go:7"
	if e.Error() != want+" (orchestrator call at x.go:7)" {
		t.Fatalf("%q", e.Error())
	}
}
