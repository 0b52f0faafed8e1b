package history

import "fmt"

// What each event type is, answered in one place (as go/token answers it for
// its tokens): the engine, the instance's turn commit, rewind, recovery and
// the HTTP API ask the Type instead of keeping their own lists, so a new
// type is one entry here, and TestEveryTypeIsInTheKindTable fails until it
// has one.

// TaskIndex says which recovery index a task needs while it is open, so that
// a restart finds it without scanning instances.
type TaskIndex uint8

const (
	// NoIndex: the task needs no index of its own. Entity calls and lock
	// requests leave through the instance's durable outbox, and their
	// answer comes back by delivery, so nothing has to be redone on
	// recovery; an instance waiting only for them stays on disk.
	NoIndex TaskIndex = iota
	// PendingIndex: the pending-work index (a/ keys). The instance
	// dispatches the task itself (runs the activity, starts the
	// sub-orchestration) once the turn has committed, and dispatches it
	// again after a restart; the task's completion deletes the entry.
	PendingIndex
	// TimerIndex: the due-timer index (t/ keys), ordered by FireAt; the
	// TimerFired completion deletes the entry.
	TimerIndex
)

// kind is what the table knows of one event type.
type kind struct {
	name string // as Durable Functions spells it
	// action: the orchestrator code asks for it; the engine records it and
	// matches it on replay, and it can never be applied from outside.
	action bool
	// opens: it opens a task that waits for a completion (TaskID names
	// the task); index is the recovery index the open task needs.
	opens bool
	index TaskIndex
	// closes: for a completion, the type that opened its task (zero for
	// any other type). failure: the completion reports that the task
	// failed (Failure says why). result: the completion's Payload is the
	// task's result, handed to the code.
	closes  Type
	failure bool
	result  bool
}

// kinds is indexed by Type. Keep the fields in the order of the kind
// struct; a zero field means no.
var kinds = [...]kind{
	ExecutionStarted:          {name: "ExecutionStarted"},
	OrchestratorStarted:       {name: "OrchestratorStarted"},
	TaskScheduled:             {name: "TaskScheduled", action: true, opens: true, index: PendingIndex},
	TaskCompleted:             {name: "TaskCompleted", closes: TaskScheduled, result: true},
	TaskFailed:                {name: "TaskFailed", closes: TaskScheduled, failure: true},
	TimerCreated:              {name: "TimerCreated", action: true, opens: true, index: TimerIndex},
	TimerFired:                {name: "TimerFired", closes: TimerCreated},
	EventRaised:               {name: "EventRaised"},
	EventSent:                 {name: "EventSent", action: true},
	SubOrchestrationCreated:   {name: "SubOrchestrationInstanceCreated", action: true, opens: true, index: PendingIndex},
	SubOrchestrationCompleted: {name: "SubOrchestrationInstanceCompleted", closes: SubOrchestrationCreated, result: true},
	SubOrchestrationFailed:    {name: "SubOrchestrationInstanceFailed", closes: SubOrchestrationCreated, failure: true},
	ExecutionCompleted:        {name: "ExecutionCompleted", action: true},
	ExecutionTerminated:       {name: "ExecutionTerminated"},
	ExecutionSuspended:        {name: "ExecutionSuspended"},
	ExecutionResumed:          {name: "ExecutionResumed"},
	ContinuedAsNew:            {name: "ContinuedAsNew", action: true},
	EntityOperationCalled:     {name: "EntityOperationCalled", action: true, opens: true, index: NoIndex},
	EntityOperationSignaled:   {name: "EntityOperationSignaled", action: true},
	EntityLockRequested:       {name: "EntityLockRequested", action: true, opens: true, index: NoIndex},
	// The grant echoes the locked set in its Payload: bookkeeping, not a
	// result for the code.
	EntityLockGranted:        {name: "EntityLockGranted", closes: EntityLockRequested},
	EntityUnlockSent:         {name: "EntityUnlockSent", action: true},
	EntityOperationCompleted: {name: "EntityOperationCompleted", closes: EntityOperationCalled, result: true},
	EntityOperationFailed:    {name: "EntityOperationFailed", closes: EntityOperationCalled, failure: true},
	CustomStatusSet:          {name: "CustomStatusSet"},
	// Durable Functions has no patches; the name says what the event is.
	PatchMarker: {name: "PatchMarker", action: true},
}

// info returns t's entry; an unknown type (a newer writer's) is the zero
// entry: nothing the engine acts on.
func (t Type) info() kind {
	if int(t) < len(kinds) {
		return kinds[t]
	}
	return kind{}
}

// String returns the event type's name as Durable Functions spells it.
func (t Type) String() string {
	if n := t.info().name; n != "" {
		return n
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// IsAction reports whether events of type t record an action of the
// orchestrator code (schedule an activity, create a timer, send, call, lock,
// complete...): the engine produces them and matches them on replay; they
// are never applied from outside.
func (t Type) IsAction() bool { return t.info().action }

// Opens reports whether t opens a task that waits for a completion
// (TaskScheduled, TimerCreated, SubOrchestrationCreated,
// EntityOperationCalled, EntityLockRequested).
func (t Type) Opens() bool { return t.info().opens }

// Index returns the recovery index an open task of type t needs (NoIndex
// for a type that opens no task).
func (t Type) Index() TaskIndex { return t.info().index }

// IsCompletion reports whether t delivers the outcome of an open task (the
// one its TaskID names).
func (t Type) IsCompletion() bool { return t.info().closes != 0 }

// Closes returns the type that opened the task a completion of type t
// closes, or 0 if t is not a completion. The index of that task is
// t.Closes().Index().
func (t Type) Closes() Type { return t.info().closes }

// IsFailure reports whether t is a completion saying that its task failed.
func (t Type) IsFailure() bool { return t.info().failure }

// HasResult reports whether t is a completion whose Payload is the task's
// result (JSON) for the code.
func (t Type) HasResult() bool { return t.info().result }
