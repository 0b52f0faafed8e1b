package seam

import (
	"errors"

	"github.com/durable-go/durable/persistence"
)

// The errors a partition answers, declared once for every surface: the
// root package re-exports them, httpapi maps them to HTTP status codes (and
// a gRPC surface would map them to gRPC codes). Each has one ErrorCode, so
// errors.Is finds it on the far side of a process boundary too.
var (
	ErrInvalidInput              = errors.New("invalid input")
	ErrInstanceNotFound          = errors.New("instance not found")
	ErrInstanceExists            = errors.New("an instance with this id is still running")
	ErrInstanceCompleted         = errors.New("instance is completed")
	ErrInstanceNotCompleted      = errors.New("instance is not completed")
	ErrNotFailed                 = errors.New("instance has not failed")
	ErrOrchestratorNotRegistered = errors.New("orchestrator is not registered")
	ErrEntityNotFound            = errors.New("entity not found")
	ErrEntityNotRegistered       = errors.New("entity is not registered")
	// ErrUnavailable: the partition cannot serve now (its node is shutting
	// down or its store is closed); the request may be retried elsewhere or
	// later.
	ErrUnavailable = errors.New("partition unavailable")
	// ErrWrongPartition: the request reached a partition that does not own
	// its target (a routing bug or a stale placement).
	ErrWrongPartition = errors.New("request reached the wrong partition")
	// ErrWaitExpired: a wait subscription ran out before the instance
	// ended; the caller subscribes again if it still wants to wait.
	ErrWaitExpired = errors.New("wait subscription expired")
	// ErrPartitionDown: the partition's store could not be opened (its
	// files are damaged or truncated); it serves nothing until an operator
	// repairs or restores it and restarts its node, so a retry does not
	// help. Declared by package persistence, which detects it.
	ErrPartitionDown = persistence.ErrPartitionDown
)

var codeErrors = map[ErrorCode]error{
	ErrorCode_ERROR_CODE_INVALID_ARGUMENT:            ErrInvalidInput,
	ErrorCode_ERROR_CODE_INSTANCE_NOT_FOUND:          ErrInstanceNotFound,
	ErrorCode_ERROR_CODE_INSTANCE_EXISTS:             ErrInstanceExists,
	ErrorCode_ERROR_CODE_INSTANCE_COMPLETED:          ErrInstanceCompleted,
	ErrorCode_ERROR_CODE_INSTANCE_NOT_COMPLETED:      ErrInstanceNotCompleted,
	ErrorCode_ERROR_CODE_NOT_FAILED:                  ErrNotFailed,
	ErrorCode_ERROR_CODE_ORCHESTRATOR_NOT_REGISTERED: ErrOrchestratorNotRegistered,
	ErrorCode_ERROR_CODE_ENTITY_NOT_FOUND:            ErrEntityNotFound,
	ErrorCode_ERROR_CODE_ENTITY_NOT_REGISTERED:       ErrEntityNotRegistered,
	ErrorCode_ERROR_CODE_UNAVAILABLE:                 ErrUnavailable,
	ErrorCode_ERROR_CODE_WRONG_PARTITION:             ErrWrongPartition,
	ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED:           ErrWaitExpired,
	ErrorCode_ERROR_CODE_PARTITION_DOWN:              ErrPartitionDown,
}

// CodeOf returns the code of err: that of the first error value of this
// package it wraps, or ERROR_CODE_UNSPECIFIED.
func CodeOf(err error) ErrorCode {
	for code, target := range codeErrors {
		if errors.Is(err, target) {
			return code
		}
	}
	return ErrorCode_ERROR_CODE_UNSPECIFIED
}

// ErrorOf encodes err for a Response (nil for nil).
func ErrorOf(err error) *Error {
	if err == nil {
		return nil
	}
	return &Error{Code: CodeOf(err), Message: err.Error()}
}

// Err decodes an error answer into an error that wraps the error value of
// its code (nil for nil).
func (e *Error) Err() error {
	if e == nil {
		return nil
	}
	return &answerError{target: codeErrors[e.GetCode()], msg: e.GetMessage()}
}

// answerError is an error a partition answered: its message as the
// partition wrote it, and the error value of its code.
type answerError struct {
	target error // nil for ERROR_CODE_UNSPECIFIED
	msg    string
}

func (e *answerError) Error() string {
	if e.msg == "" && e.target != nil {
		return e.target.Error()
	}
	return e.msg
}

func (e *answerError) Unwrap() error { return e.target }

// Failed returns a Response that answers err (an empty success for nil).
// The empty success is one shared value: callers must not modify a
// response they are answered.
func Failed(err error) *Response {
	if err == nil {
		return ok
	}
	return &Response{Error: ErrorOf(err)}
}

// ok is every empty success: most writes are answered with it, and one
// value saves an allocation per answer.
var ok = &Response{}
