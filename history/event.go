// Package history defines the events an orchestration instance is made of and
// their compact, versioned binary encoding.
//
// A history is the ordered, append-only list of events of one execution of an
// instance: the only truth of its state. The orchestration engine consumes and
// produces these events; the store keeps them as opaque bytes. The event set is
// one flat struct whose fields each event type uses a subset of, so that new
// event types (timers, external events, sub-orchestrations, entities) and new
// fields never break the encoding of the old ones.
package history

import (
	"fmt"
	"time"
)

// Type says what happened.
type Type uint8

// The event types. Numbers are part of the storage format: never renumber.
// What each type is (an action, a completion, which index its task needs)
// is in the kinds table (kinds.go): a new type needs an entry there.
const (
	// ExecutionStarted begins an execution: Name is the orchestrator,
	// Version its version, Payload its input, InstanceID the instance,
	// ExecutionID the execution, ParentInstanceID/ParentTaskID the caller
	// of a sub-orchestration.
	ExecutionStarted Type = 1
	// OrchestratorStarted opens a turn; its Timestamp is what Context.Now
	// returns for the whole turn.
	OrchestratorStarted Type = 2
	// TaskScheduled records that the code scheduled activity Name with
	// Payload as input under TaskID.
	TaskScheduled Type = 3
	// TaskCompleted delivers the result (Payload) of activity TaskID.
	TaskCompleted Type = 4
	// TaskFailed delivers the failure of activity TaskID.
	TaskFailed Type = 5
	// TimerCreated records a durable timer TaskID due at FireAt.
	TimerCreated Type = 6
	// TimerFired delivers timer TaskID.
	TimerFired Type = 7
	// EventRaised delivers external event Name with Payload.
	EventRaised Type = 8
	// EventSent records an event Name sent to InstanceID.
	EventSent Type = 9
	// SubOrchestrationCreated records a call of orchestrator Name as
	// instance InstanceID under TaskID.
	SubOrchestrationCreated Type = 10
	// SubOrchestrationCompleted delivers the output of sub-orchestration TaskID.
	SubOrchestrationCompleted Type = 11
	// SubOrchestrationFailed delivers the failure of sub-orchestration TaskID.
	SubOrchestrationFailed Type = 12
	// ExecutionCompleted ends an execution with output Payload, or with
	// Failure when it failed.
	ExecutionCompleted Type = 13
	// ExecutionTerminated ends an execution from outside, with Reason.
	ExecutionTerminated Type = 14
	// ExecutionSuspended pauses the delivery of events to the code.
	ExecutionSuspended Type = 15
	// ExecutionResumed resumes a suspended execution.
	ExecutionResumed Type = 16
	// ContinuedAsNew ends an execution that restarts with input Payload.
	ContinuedAsNew Type = 17
	// EntityOperationCalled records a request/response call of operation Name
	// on entity InstanceID under TaskID.
	EntityOperationCalled Type = 18
	// EntityOperationSignaled records a one-way signal to entity InstanceID
	// (due at FireAt when scheduled).
	EntityOperationSignaled Type = 19
	// EntityLockRequested records a request to lock the entities listed in
	// Payload under TaskID.
	EntityLockRequested Type = 20
	// EntityLockGranted delivers the lock requested under TaskID.
	EntityLockGranted Type = 21
	// EntityUnlockSent records the release of a lock.
	EntityUnlockSent Type = 22
	// EntityOperationCompleted delivers the result of entity call TaskID.
	EntityOperationCompleted Type = 23
	// EntityOperationFailed delivers the failure of entity call TaskID.
	EntityOperationFailed Type = 24
	// CustomStatusSet records a new custom status (Payload).
	CustomStatusSet Type = 25
	// PatchMarker records that the code, running new (not replaying),
	// asked whether patch Name is in effect (Context.IsPatched): the
	// execution takes the patched path from then on, on every replay too.
	// It opens no task and carries no TaskID.
	PatchMarker Type = 26
)

// Failure describes why a task or an execution failed.
type Failure struct {
	ErrorType  string   `json:"errorType"`
	Message    string   `json:"message"`
	StackTrace string   `json:"stackTrace,omitempty"`
	Inner      *Failure `json:"innerFailure,omitempty"`
}

// Error formats the failure as "type: message".
func (f *Failure) Error() string {
	if f == nil {
		return "<nil failure>"
	}
	if f.ErrorType == "" {
		return f.Message
	}
	return f.ErrorType + ": " + f.Message
}

// Event is one history event. Which fields are set depends on Type (see the
// Type constants); unset fields cost nothing in the encoding.
type Event struct {
	Type             Type
	Timestamp        time.Time
	TaskID           int64
	Name             string
	Payload          []byte // JSON
	Failure          *Failure
	InstanceID       string
	ExecutionID      string
	FireAt           time.Time
	Reason           string
	ParentInstanceID string
	ParentTaskID     int64
	TraceParent      string // ExecutionStarted: the W3C traceparent its spans join, kept so a restart goes on with the trace
	// Attempt numbers the tries of a task scheduled under a retry policy,
	// from 1 (0 when there is no retry policy).
	Attempt int32
	// ParentExecutionID is the execution of the parent that started a
	// sub-orchestration (in its ExecutionStarted event).
	ParentExecutionID string
	// Version is the version of the orchestrator an execution runs (in its
	// ExecutionStarted event); empty for an unversioned orchestrator and
	// in histories written before versions existed.
	Version string
}

// Describe renders the event for error messages: its type and the fields
// that identify it.
func (e *Event) Describe() string {
	switch e.Type {
	case TaskScheduled, TaskCompleted, TaskFailed:
		if e.Name != "" {
			return fmt.Sprintf("%s(name=%q, taskId=%d)", e.Type, e.Name, e.TaskID)
		}
		return fmt.Sprintf("%s(taskId=%d)", e.Type, e.TaskID)
	case TimerCreated, TimerFired:
		return fmt.Sprintf("%s(taskId=%d, fireAt=%s)", e.Type, e.TaskID, e.FireAt.UTC().Format(time.RFC3339Nano))
	case SubOrchestrationCreated, EntityOperationCalled:
		return fmt.Sprintf("%s(name=%q, instanceId=%q, taskId=%d)", e.Type, e.Name, e.InstanceID, e.TaskID)
	case EventRaised, EventSent, PatchMarker:
		return fmt.Sprintf("%s(name=%q)", e.Type, e.Name)
	default:
		return e.Type.String()
	}
}
