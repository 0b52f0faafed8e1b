package durabletest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

// ReplayJSON is Replay of a history as JSON: the status payload of the
// HTTP API (GET .../instances/{id}?showHistory=true&showHistoryOutput=true,
// whose "historyEvents" it reads) or the array `durable history --json`
// prints. Without showHistoryOutput the payloads are missing and the code
// replays with null input and results.
//
// The Durable Functions rendering leaves out turn markers and folds each
// scheduling into its completion; the events are rebuilt from the fields
// this API adds to it (Position, TaskId, Scheduled,
// OrchestratorStartedTime, ExecutionId). JSON from a server that does not
// add them is refused with an error, not replayed approximately.
func ReplayJSON(orchestrator orchestration.Orchestrator, data []byte) error {
	events, err := EventsFromJSON(data)
	if err != nil {
		return err
	}
	return Replay(orchestrator, events)
}

// jsonEvent is the HTTP API's rendering of a history event (the fields of
// httpapi.HistoryEvent that a replay reads; that package imports the root
// package, which imports this one, so the type is restated here).
type jsonEvent struct {
	EventType               string          `json:"EventType"`
	Name                    string          `json:"Name"`
	FunctionName            string          `json:"FunctionName"`
	InstanceID              string          `json:"InstanceId"`
	Reason                  string          `json:"Reason"`
	Input                   json.RawMessage `json:"Input"`
	Result                  json.RawMessage `json:"Result"`
	FailureDetails          *jsonFailure    `json:"FailureDetails"`
	FireAt                  string          `json:"FireAt"`
	Timestamp               string          `json:"Timestamp"`
	Position                *int            `json:"Position"`
	TaskID                  *int64          `json:"TaskId"`
	ExecutionID             string          `json:"ExecutionId"`
	Version                 string          `json:"Version"`
	Scheduled               *jsonEvent      `json:"Scheduled"`
	OrchestratorStartedTime string          `json:"OrchestratorStartedTime"`
}

type jsonFailure struct {
	ErrorType    string `json:"ErrorType"`
	ErrorMessage string `json:"ErrorMessage"`
	StackTrace   string `json:"StackTrace"`
}

// typesByName maps Durable Functions' event type names to types.
var typesByName = func() map[string]history.Type {
	m := map[string]history.Type{}
	for t := history.Type(1); t != 0; t++ {
		if name := t.String(); name != fmt.Sprintf("EventType(%d)", uint8(t)) {
			m[name] = t
		}
	}
	return m
}()

// EventsFromJSON rebuilds the history events of the JSON ReplayJSON takes,
// in history order.
func EventsFromJSON(data []byte) ([]*history.Event, error) {
	var rendered []jsonEvent
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &rendered); err != nil {
			return nil, fmt.Errorf("durabletest: decode history JSON: %w", err)
		}
	default:
		var status struct {
			HistoryEvents *[]jsonEvent `json:"historyEvents"`
		}
		if err := json.Unmarshal(trimmed, &status); err != nil {
			return nil, fmt.Errorf("durabletest: decode status JSON: %w", err)
		}
		if status.HistoryEvents == nil {
			return nil, errors.New("durabletest: status JSON has no historyEvents (ask with showHistory=true&showHistoryOutput=true)")
		}
		rendered = *status.HistoryEvents
	}
	byPos := map[int]*history.Event{}
	add := func(pos int, ev *history.Event) error {
		if _, dup := byPos[pos]; dup {
			return fmt.Errorf("durabletest: two history events at position %d", pos)
		}
		byPos[pos] = ev
		return nil
	}
	var walk func(je *jsonEvent) error
	walk = func(je *jsonEvent) error {
		if je.Position == nil {
			return fmt.Errorf("durabletest: history event %s has no Position: the JSON comes from a server that does not render what a replay needs", je.EventType)
		}
		pos := *je.Position
		ev, err := je.event()
		if err != nil {
			return fmt.Errorf("durabletest: history event %d: %w", pos, err)
		}
		if err := add(pos, ev); err != nil {
			return err
		}
		if je.OrchestratorStartedTime != "" {
			ts, err := parseTime(je.OrchestratorStartedTime)
			if err != nil {
				return fmt.Errorf("durabletest: history event %d: OrchestratorStartedTime: %w", pos, err)
			}
			if err := add(pos-1, &history.Event{Type: history.OrchestratorStarted, Timestamp: ts}); err != nil {
				return err
			}
		}
		if je.Scheduled != nil {
			return walk(je.Scheduled)
		}
		return nil
	}
	for i := range rendered {
		if err := walk(&rendered[i]); err != nil {
			return nil, err
		}
	}
	positions := make([]int, 0, len(byPos))
	for p := range byPos {
		positions = append(positions, p)
	}
	sort.Ints(positions)
	events := make([]*history.Event, 0, len(positions))
	for i, p := range positions {
		if p != i {
			return nil, fmt.Errorf("durabletest: history JSON has no event at position %d", i)
		}
		events = append(events, byPos[p])
	}
	return events, nil
}

// event rebuilds one history event from its rendering.
func (je *jsonEvent) event() (*history.Event, error) {
	t, ok := typesByName[je.EventType]
	if !ok {
		return nil, fmt.Errorf("unknown EventType %q", je.EventType)
	}
	ev := &history.Event{Type: t, Name: je.Name, InstanceID: je.InstanceID, Reason: je.Reason}
	var err error
	if ev.Timestamp, err = parseTime(je.Timestamp); err != nil {
		return nil, fmt.Errorf("Timestamp: %w", err)
	}
	if je.FireAt != "" {
		if ev.FireAt, err = parseTime(je.FireAt); err != nil {
			return nil, fmt.Errorf("FireAt: %w", err)
		}
	}
	if je.TaskID != nil {
		ev.TaskID = *je.TaskID
	}
	if f := je.FailureDetails; f != nil {
		ev.Failure = &history.Failure{ErrorType: f.ErrorType, Message: f.ErrorMessage, StackTrace: f.StackTrace}
	}
	switch t {
	case history.ExecutionStarted:
		ev.Name = je.FunctionName
		ev.ExecutionID = je.ExecutionID
		ev.Version = je.Version
		ev.Payload = payload(je.Input)
	case history.TaskScheduled, history.SubOrchestrationCreated, history.EventRaised, history.EventSent:
		ev.Payload = payload(je.Input)
	case history.ExecutionCompleted, history.ContinuedAsNew:
		ev.Payload = payload(je.Result)
	default:
		if t.HasResult() {
			ev.Payload = payload(je.Result)
		}
	}
	return ev, nil
}

// payload undoes the rendering of an empty payload as null.
func payload(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	return raw
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
