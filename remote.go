package durable

import (
	"context"
	"errors"
	"fmt"

	"github.com/durable-go/durable/actors"
	"github.com/durable-go/durable/orchestration"
)

// RemoteActivityFunc runs activity name in another process (a worker of
// package sidecar) with input (JSON) and returns its output (JSON). ctx
// carries the task (orchestration.ActivityInfoFrom) and ends when the
// instance is terminated or the node shuts down. A failure the worker
// reported is returned as a *FailureDetails, which becomes the task's
// failure as it is (type, message, stack, inner failure).
type RemoteActivityFunc func(ctx context.Context, name string, input []byte) ([]byte, error)

// SetRemoteActivities makes fn serve every activity that no Go function is
// registered for; a name registered with RegisterActivity stays served by
// Go. Call it before Start, so that activities recovered on start reach fn.
func (r *Runtime) SetRemoteActivities(fn RemoteActivityFunc) error {
	if fn == nil {
		return fmt.Errorf("set remote activities: %w", ErrInvalidInput)
	}
	r.mu.Lock()
	started := r.node != nil
	r.mu.Unlock()
	if started {
		return fmt.Errorf("set remote activities: call it before Start")
	}
	return r.reg.setRemoteActivities(fn)
}

// RemoteTurn is one turn of an orchestration whose code runs in another
// process: its past events, the new events of the turn, and its time.
type RemoteTurn = actors.RemoteTurn

// RemoteResult is what the remote code did in a turn: the events it
// produced (actions, then its end), its custom status, and for a
// continue-as-new the events carried over.
type RemoteResult = actors.RemoteResult

// RemoteOrchestratorFunc hands a turn to a remote worker and calls done
// once, from any goroutine, with the worker's answer, or with an error
// when ctx ends first (the turn is withdrawn and handed out again later).
type RemoteOrchestratorFunc func(ctx context.Context, turn RemoteTurn, done func(*RemoteResult, error))

// SetRemoteOrchestrators makes fn run every orchestrator that no Go function
// is registered for: their instances run through the same instance actors,
// journal, timers and recovery as Go ones, and fn runs their code a turn at
// a time. known says whether a name is served by a worker, for Client.Start,
// which refuses a name that neither Go code nor a worker serves. Call it
// before Start.
func (r *Runtime) SetRemoteOrchestrators(fn RemoteOrchestratorFunc, known func(name string) bool) error {
	if fn == nil || known == nil {
		return fmt.Errorf("set remote orchestrators: %w", ErrInvalidInput)
	}
	r.mu.Lock()
	started := r.node != nil
	r.mu.Unlock()
	if started {
		return fmt.Errorf("set remote orchestrators: call it before Start")
	}
	return r.reg.setRemoteOrchestrators(fn, known)
}

// RemoteEntityBatch is a batch of operations of an entity whose code runs
// in another process: the entity's state and the operations, in order.
type RemoteEntityBatch = actors.RemoteEntityBatch

// RemoteEntityResult is what the remote entity code did with a batch: a
// result per operation, the new state, and the signals and orchestration
// starts the operations sent.
type RemoteEntityResult = actors.RemoteEntityResult

// RemoteOperation is one operation of a RemoteEntityBatch.
type RemoteOperation = actors.RemoteOperation

// RemoteOperationResult is one operation's outcome in a RemoteEntityResult.
type RemoteOperationResult = actors.RemoteOperationResult

// RemoteEntityFunc hands a batch to a remote worker and calls done once,
// from any goroutine, with the worker's answer, or with an error when ctx
// ends first or the worker failed the whole batch (its operations stay in
// the entity's inbox and run again in a later batch).
type RemoteEntityFunc func(ctx context.Context, batch RemoteEntityBatch, done func(*RemoteEntityResult, error))

// SetRemoteEntities makes fn run every entity that no Go function is
// registered for: their entities keep their state, inbox, locks and
// de-duplication in durable's entity actors as Go ones do, and fn runs
// their operations a batch at a time. known says whether a name is served
// by a worker, for the Client's entity calls, which refuse a name that
// neither Go code nor a worker serves. Call it before Start.
func (r *Runtime) SetRemoteEntities(fn RemoteEntityFunc, known func(name string) bool) error {
	if fn == nil || known == nil {
		return fmt.Errorf("set remote entities: %w", ErrInvalidInput)
	}
	r.mu.Lock()
	started := r.node != nil
	r.mu.Unlock()
	if started {
		return fmt.Errorf("set remote entities: call it before Start")
	}
	return r.reg.setRemoteEntities(fn, known)
}

// errServedRemotely is what the placeholder Go function of a remote
// orchestrator returns if anything ever runs it as Go code.
var errServedRemotely = errors.New("this orchestrator runs on remote workers, not as Go code")

func servedRemotely(*orchestration.Context) (any, error) { return nil, errServedRemotely }
