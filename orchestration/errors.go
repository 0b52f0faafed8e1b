package orchestration

import (
	"errors"
	"fmt"

	"github.com/durable-go/durable/history"
)

// FailureDetails describes why a task or an instance failed: the error's
// type, its message and, for a panic, the stack.
type FailureDetails = history.Failure

// ErrorTypeNonDeterminism is the ErrorType of the failure of an instance whose
// code did not replay its history.
const ErrorTypeNonDeterminism = "NonDeterminismError"

// ErrorTypePanic is the ErrorType of the failure of code that panicked.
const ErrorTypePanic = "panic"

// TaskFailedError is what Await returns when the awaited activity failed. The
// orchestrator may handle it (errors.As) or return it, which fails the
// instance with the activity's failure details as the inner failure.
type TaskFailedError struct {
	TaskName string
	TaskID   int64
	Failure  *FailureDetails
}

// Error describes the failed task.
func (e *TaskFailedError) Error() string {
	return fmt.Sprintf("task %q (id %d) failed: %s", e.TaskName, e.TaskID, e.Failure.Error())
}

// NonDeterminismError reports that the orchestrator code did not do on replay
// what its history says it did: the code changed, or it read a clock, a random
// number or anything else not drawn from the context.
type NonDeterminismError struct {
	// Position is the index of the history event at which the mismatch was
	// found (0 is the first event of the execution).
	Position int
	// Recorded is what history holds there ("" when history holds nothing
	// more), Requested what the code asked for ("" when it asked nothing).
	Recorded, Requested string
	// CallSite is the file:line, in the orchestrator's code, of the call
	// that asked for Requested (CallActivity, CreateTimer, IsPatched, ...)
	// or, when the code asked for nothing, of the Await it was blocked in.
	// It is "" when no such call is known: the code returned (Requested is
	// then the completion), or the engine asked on its own side (a retry).
	CallSite string
}

// Error names the position, what history holds, what the code asked for
// and, when known, where in the code it asked.
func (e *NonDeterminismError) Error() string {
	recorded, requested := e.Recorded, e.Requested
	if recorded == "" {
		recorded = "nothing"
	}
	if requested == "" {
		requested = "nothing"
	}
	msg := fmt.Sprintf("non-deterministic orchestrator: at history event %d the history holds %s but the code asked for %s",
		e.Position, recorded, requested)
	if e.CallSite != "" {
		msg += " (orchestrator call at " + e.CallSite + ")"
	}
	return msg
}

// ErrExecutionDone is returned by Apply once the execution has completed.
var ErrExecutionDone = errors.New("orchestration execution is already complete")

// failureFromError turns an error returned by orchestrator code into failure
// details, keeping a failed task's details as the inner failure.
func failureFromError(err error) *FailureDetails {
	f := &FailureDetails{ErrorType: fmt.Sprintf("%T", err), Message: err.Error()}
	var tf *TaskFailedError
	if errors.As(err, &tf) {
		f.Inner = tf.Failure
	}
	var nd *NonDeterminismError
	if errors.As(err, &nd) {
		f.ErrorType = ErrorTypeNonDeterminism
	}
	return f
}
