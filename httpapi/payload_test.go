package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/durable-go/durable/history"
)

// Every completion shows its task's outcome, whatever its kind: the result
// (only with showHistoryOutput) of those that have one, the failure of
// those that failed, and nothing for a timer or a lock grant. Activities and
// sub-orchestrations fold their scheduling into the completion.
func TestHistoryRendersTheOutcomeOfEveryCompletion(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	fail := &history.Failure{ErrorType: "E", Message: "no", StackTrace: "here"}
	events := []*history.Event{
		{Type: history.OrchestratorStarted, Timestamp: at},
		{Type: history.ExecutionStarted, Timestamp: at, Name: "Orch"},
		{Type: history.TaskScheduled, Timestamp: at, TaskID: 0, Name: "Act"},
		{Type: history.EntityOperationCalled, Timestamp: at, TaskID: 1, Name: "get", InstanceID: "@counter@a"},
		{Type: history.TimerCreated, Timestamp: at, TaskID: 2, FireAt: at},
		{Type: history.EntityLockRequested, Timestamp: at, TaskID: 3, Payload: []byte(`["@counter@b"]`)},
		{Type: history.EntityOperationCalled, Timestamp: at, TaskID: 4, Name: "fail", InstanceID: "@counter@a"},
		{Type: history.OrchestratorStarted, Timestamp: at},
		{Type: history.PatchMarker, Timestamp: at, Name: "v2"},
		{Type: history.TaskCompleted, Timestamp: at, TaskID: 0, Payload: []byte(`"act"`)},
		{Type: history.EntityOperationCompleted, Timestamp: at, TaskID: 1, Payload: []byte(`7`)},
		{Type: history.TimerFired, Timestamp: at, TaskID: 2, FireAt: at},
		{Type: history.EntityLockGranted, Timestamp: at, TaskID: 3, Payload: []byte(`["@counter@b"]`)},
		{Type: history.EntityOperationFailed, Timestamp: at, TaskID: 4, Failure: fail},
	}
	byType := func(h []HistoryEvent) map[string]HistoryEvent {
		m := map[string]HistoryEvent{}
		for _, he := range h {
			m[he.EventType] = he
		}
		return m
	}
	plain := byType(historyEvents(events, false))
	if _, ok := plain["TaskScheduled"]; ok {
		t.Errorf("TaskScheduled is not folded into its completion")
	}
	if he := plain["TaskCompleted"]; he.FunctionName != "Act" || he.ScheduledTime == "" || he.Result != nil {
		t.Errorf("TaskCompleted without output: %+v", he)
	}
	if he := plain["EntityOperationCompleted"]; he.Result != nil {
		t.Errorf("a result without showHistoryOutput: %+v", he)
	}
	shown := byType(historyEvents(events, true))
	for typ, want := range map[string]string{"TaskCompleted": `"act"`, "EntityOperationCompleted": `7`, "TimerFired": ``, "EntityLockGranted": ``} {
		if got := string(shown[typ].Result); got != want {
			t.Errorf("%s: Result %q, want %q", typ, got, want)
		}
	}
	if he := shown["EntityOperationFailed"]; he.Result != nil || he.Reason != "no" || he.Details != "here" || he.FailureDetails == nil || he.FailureDetails.ErrorType != "E" {
		t.Errorf("EntityOperationFailed: %+v", he)
	}
	if he := shown["TimerFired"]; he.FireAt == "" {
		t.Errorf("TimerFired without FireAt: %+v", he)
	}
}

// A patch marker shows as its own event with the patch's name (with or
// without showHistoryOutput: it has no payload).
func TestHistoryRendersPatchMarkersWithTheirName(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	events := []*history.Event{
		{Type: history.OrchestratorStarted, Timestamp: at},
		{Type: history.ExecutionStarted, Timestamp: at, Name: "Orch"},
		{Type: history.PatchMarker, Timestamp: at, Name: "v2"},
	}
	for _, output := range []bool{false, true} {
		h := historyEvents(events, output)
		if len(h) != 2 {
			t.Fatalf("showHistoryOutput=%v: %+v", output, h)
		}
		b, err := json.Marshal(h[1])
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(b), `{"EventType":"PatchMarker","Name":"v2","Timestamp":"2024-05-01T10:00:00Z","Position":2}`; got != want {
			t.Errorf("showHistoryOutput=%v: %s, want %s", output, got, want)
		}
	}
}

// The fields a replay needs ride along the Durable Functions ones: each
// event's position, task ids, the folded scheduling event whole, and the
// time of the turn marker left out before an event.
func TestHistoryCarriesWhatAReplayNeeds(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	later := at.Add(time.Second)
	events := []*history.Event{
		{Type: history.OrchestratorStarted, Timestamp: at},
		{Type: history.ExecutionStarted, Timestamp: at, Name: "Orch", InstanceID: "i", ExecutionID: "e", Payload: []byte(`"in"`)},
		{Type: history.TaskScheduled, Timestamp: at, TaskID: 0, Name: "A", Payload: []byte(`1`)},
		{Type: history.OrchestratorStarted, Timestamp: later},
		{Type: history.TaskCompleted, Timestamp: later, TaskID: 0, Payload: []byte(`2`)},
	}
	h := historyEvents(events, true)
	if len(h) != 2 {
		t.Fatalf("%+v", h)
	}
	started, done := h[0], h[1]
	if *started.Position != 1 || started.OrchestratorStartedTime != formatEventTime(at) || started.InstanceID != "i" ||
		started.ExecutionID != "e" || string(started.Input) != `"in"` || started.TaskID != nil {
		t.Errorf("ExecutionStarted: %+v", started)
	}
	if *done.Position != 4 || *done.TaskID != 0 || done.OrchestratorStartedTime != formatEventTime(later) || done.FunctionName != "A" {
		t.Errorf("TaskCompleted: %+v", done)
	}
	if s := done.Scheduled; s == nil || s.EventType != "TaskScheduled" || *s.Position != 2 || *s.TaskID != 0 || s.Name != "A" || string(s.Input) != "1" {
		t.Errorf("Scheduled: %+v", done.Scheduled)
	}
}
