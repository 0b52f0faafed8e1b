package history

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestEventsRoundTripThroughTheEncoding(t *testing.T) {
	ts := time.Date(2026, 11, 27, 14, 0, 0, 123456789, time.UTC)
	cases := []struct {
		name string
		ev   Event
	}{
		{"minimal", Event{Type: OrchestratorStarted}},
		{"trace parent", Event{Type: ExecutionStarted, Name: "O", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		{"execution started", Event{Type: ExecutionStarted, Timestamp: ts, Name: "Orchestrator", Payload: []byte(`{"a":1}`), InstanceID: "abc", ExecutionID: "e1", ParentInstanceID: "p", ParentTaskID: 7, ParentExecutionID: "pe"}},
		{"versioned execution started", Event{Type: ExecutionStarted, Timestamp: ts, Name: "Order", Version: "2", InstanceID: "abc", ExecutionID: "e1"}},
		{"retry attempt", Event{Type: TaskScheduled, TaskID: 5, Name: "Flaky", Attempt: 3}},
		{"task scheduled", Event{Type: TaskScheduled, Timestamp: ts, TaskID: 42, Name: "Hello", Payload: []byte(`"Tokyo"`)}},
		{"negative task id", Event{Type: TaskCompleted, TaskID: -1, Payload: []byte(`null`)}},
		{"empty payload is kept apart from none", Event{Type: TaskCompleted, TaskID: 1, Payload: []byte{}}},
		{"failure with inner", Event{Type: TaskFailed, TaskID: 3, Failure: &Failure{ErrorType: "E", Message: "m", StackTrace: "s", Inner: &Failure{Message: "inner"}}}},
		{"timer", Event{Type: TimerCreated, TaskID: 1, FireAt: ts.Add(time.Hour)}},
		{"terminated", Event{Type: ExecutionTerminated, Reason: "enough"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Unmarshal(Marshal(&tc.ev))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.ev) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", *got, tc.ev)
			}
		})
	}
}

func TestUnknownFieldsAreSkipped(t *testing.T) {
	b := Marshal(&Event{Type: TaskScheduled, TaskID: 2, Name: "Hello"})
	// field 99, varint 5 and field 98, bytes "xy": a newer writer's additions.
	b = append(b, 0x98, 0x06, 0x05, 0x92, 0x06, 0x02, 'x', 'y')
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Hello" || got.TaskID != 2 {
		t.Fatalf("got %#v", got)
	}
}

// An ExecutionStarted event written before versions existed has no version
// field: it decodes with the empty (unversioned) version, and the event
// with a version decodes in a decoder that only skips the field.
func TestExecutionStartedWithoutVersionDecodesUnversioned(t *testing.T) {
	old := Marshal(&Event{Type: ExecutionStarted, Name: "Order", InstanceID: "i"})
	got, err := Unmarshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "" || got.Name != "Order" {
		t.Fatalf("old event decoded as %#v", got)
	}
	withVersion := Marshal(&Event{Type: ExecutionStarted, Name: "Order", InstanceID: "i", Version: "2"})
	if len(withVersion) <= len(old) {
		t.Fatalf("the version is not encoded: %x vs %x", withVersion, old)
	}
	if string(withVersion[:len(old)]) != string(old) {
		t.Fatalf("the version is not an appended field: %x vs %x", withVersion, old)
	}
}

func TestGarbageIsReportedAsCorrupt(t *testing.T) {
	for _, in := range [][]byte{nil, {}, {9}, {1, 0xff}, {1, 0x0a, 0x05, 'a'}, {1}} {
		if _, err := Unmarshal(in); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Unmarshal(%v) = %v, want ErrCorrupt", in, err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(Marshal(&Event{Type: TaskScheduled, TaskID: 2, Name: "Hello", Payload: []byte(`"x"`)}))
	f.Add(Marshal(&Event{Type: TaskFailed, Failure: &Failure{Message: "m", Inner: &Failure{Message: "i"}}}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Unmarshal(data)
		if err != nil {
			return
		}
		again, err := Unmarshal(Marshal(e))
		if err != nil {
			t.Fatalf("re-decoding a decoded event: %v", err)
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("not stable:\n%#v\n%#v", e, again)
		}
	})
}
