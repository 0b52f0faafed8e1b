package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// Remote orchestrators: orchestrator code that runs in another process (a
// worker of the Durable Task sidecar protocol, package sidecar). The
// instance actor, its journal, indexes, timers and recovery are the same as
// for Go code; only the engine differs. The Go engine runs the code in
// memory; a remote engine hands a worker the execution's past events and
// the turn's new ones and gets back the events the code produced (the
// actions, and the end of the execution), which the actor commits with the
// new events in ONE batch, exactly as it commits a Go turn. Determinism is
// the worker SDK's job: it replays the past events itself.
//
// The worker's answer comes back asynchronously; until it does the actor
// treats the turn like a commit in flight (new requests and results wait),
// except that a terminate withdraws the turn from the workers.

// engine is what the instance actor needs of an execution:
// *orchestration.Execution for Go code, *remoteExecution for remote code.
type engine interface {
	Replay(events []*history.Event) (*orchestration.Turn, error)
	Apply(events []*history.Event) (*orchestration.Turn, error)
	Close()
	Done() bool
	ExecutionID() string
	HeldLocks() []string
	IsOpen(taskID int64) bool
	OpenTasks() []*history.Event
}

// RemoteOrchestrators is implemented by a Registry whose orchestrators may
// run in other processes: the registry decides, per name, whether Go code
// or remote workers serve it.
type RemoteOrchestrators interface {
	// ServedRemotely reports whether remote workers serve orchestrator
	// name (Registry.Orchestrator must also report it).
	ServedRemotely(name string) bool
	// RunTurn hands one turn to a worker and calls done once, from any
	// goroutine, with the worker's answer or an error (ctx ended: the
	// turn was withdrawn).
	RunTurn(ctx context.Context, turn RemoteTurn, done func(*RemoteResult, error))
}

// RemoteTurn is one turn of a remote orchestration.
type RemoteTurn struct {
	InstanceID, ExecutionID string
	// Name is the orchestrator's name.
	Name string
	// Past are the events the worker has seen in earlier turns; New the
	// events of this turn (never empty; the first is an
	// OrchestratorStarted).
	Past, New []*history.Event
	// Now is the turn's time: the timestamp of the events it produces.
	Now time.Time
}

// RemoteResult is what a worker's code did in a turn.
type RemoteResult struct {
	// Events are the produced events in order: actions (TaskScheduled,
	// TimerCreated, SubOrchestrationCreated, EntityOperationCalled,
	// EntityOperationSignaled, each with the worker's task id), then
	// ExecutionCompleted or ContinuedAsNew if the code ended.
	Events []*history.Event
	// CustomStatus is the code's custom status (JSON), if it set one.
	CustomStatus []byte
	// CarryOver, for a ContinuedAsNew (whose Payload is the next input),
	// are the events the next execution receives first.
	CarryOver []*history.Event
}

// newExecution makes the engine of an execution of orchestrator name: a
// remote one if the registry says remote workers serve it, else the Go
// engine running fn.
func (a *instanceActor) newExecution(name, executionID string, fn orchestration.Orchestrator) engine {
	if r, ok := a.node.cfg.Registry.(RemoteOrchestrators); ok && r.ServedRemotely(name) {
		return &remoteExecution{instanceID: a.id, executionID: executionID, name: name, runner: r, open: map[int64]*history.Event{}}
	}
	return orchestration.NewExecution(a.id, executionID, fn, a.node.log)
}

// remoteExecution is the engine of a remote orchestrator: the execution's
// history (the worker needs all of it every turn) and its open tasks.
type remoteExecution struct {
	instanceID, executionID, name string
	runner                        RemoteOrchestrators

	past      []*history.Event // shown to a worker
	unsent    []*history.Event // committed, not yet shown (the start's events)
	open      map[int64]*history.Event
	held      []string // the entities of the critical section held
	done      bool
	suspended bool
}

// Replay takes the stored history. The code does not run here: the worker
// replays it on the next turn.
func (r *remoteExecution) Replay(events []*history.Event) (*orchestration.Turn, error) {
	for _, ev := range events {
		r.track(ev)
	}
	r.past = events
	return &orchestration.Turn{}, nil
}

// Apply records events without running code; they are shown to a worker
// in the next turn (pending reports them). The actor starts a remote
// instance through its inbox instead (startRemote), so that its start is
// acknowledged before any worker is reached and recovery finds it.
func (r *remoteExecution) Apply(events []*history.Event) (*orchestration.Turn, error) {
	for _, ev := range events {
		r.track(ev)
	}
	r.unsent = append(r.unsent, events...)
	return &orchestration.Turn{Events: events, Suspended: r.suspended}, nil
}

// pending reports whether committed events wait for a worker's turn.
func (r *remoteExecution) pending() bool { return len(r.unsent) > 0 }

// track keeps the open tasks, the locks held and the end of the
// execution.
func (r *remoteExecution) track(ev *history.Event) {
	switch {
	case ev.Type.Opens():
		r.open[ev.TaskID] = ev
	case ev.Type.IsCompletion():
		if o, ok := r.open[ev.TaskID]; ok && o.Type == ev.Type.Closes() {
			delete(r.open, ev.TaskID)
			if ev.Type == history.EntityLockGranted {
				r.held = nil
				_ = json.Unmarshal(o.Payload, &r.held)
			}
		}
	case ev.Type == history.EntityUnlockSent:
		var released []string
		_ = json.Unmarshal(ev.Payload, &released)
		r.held = slices.DeleteFunc(r.held, func(id string) bool { return slices.Contains(released, id) })
	case ev.Type == history.ExecutionCompleted, ev.Type == history.ContinuedAsNew, ev.Type == history.ExecutionTerminated:
		r.done = true
	case ev.Type == history.ExecutionSuspended:
		r.suspended = true
	case ev.Type == history.ExecutionResumed:
		r.suspended = false
	}
}

// Close implements engine; a remote execution holds nothing to release.
func (r *remoteExecution) Close() {}

// Done implements engine.
func (r *remoteExecution) Done() bool { return r.done }

// ExecutionID implements engine.
func (r *remoteExecution) ExecutionID() string { return r.executionID }

// HeldLocks implements engine: the entities of the critical section the
// worker's code holds.
func (r *remoteExecution) HeldLocks() []string { return r.held }

// IsOpen implements engine.
func (r *remoteExecution) IsOpen(taskID int64) bool { _, ok := r.open[taskID]; return ok }

// OpenTasks implements engine.
func (r *remoteExecution) OpenTasks() []*history.Event {
	out := make([]*history.Event, 0, len(r.open))
	for _, ev := range r.open {
		out = append(out, ev)
	}
	sortByTask(out)
	return out
}

func sortByTask(evs []*history.Event) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].TaskID < evs[j-1].TaskID; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

// finish makes the turn to commit from a worker's answer: the new events,
// then the produced ones; actions go out after the commit.
func (r *remoteExecution) finish(newEvents []*history.Event, res *RemoteResult) (*orchestration.Turn, error) {
	if res == nil {
		return nil, errors.New("remote orchestrator: no result")
	}
	turn := &orchestration.Turn{}
	seen := map[int64]bool{}
	for _, ev := range res.Events {
		switch {
		case ev.Type == history.ExecutionCompleted:
			turn.Done, turn.Output, turn.Failure = true, ev.Payload, ev.Failure
		case ev.Type == history.ContinuedAsNew:
			turn.Done, turn.ContinuedAsNew, turn.NewInput, turn.CarryOver = true, true, ev.Payload, res.CarryOver
		case ev.Type.Opens():
			if seen[ev.TaskID] || r.open[ev.TaskID] != nil {
				return nil, fmt.Errorf("remote orchestrator %q asked for task id %d twice", r.name, ev.TaskID)
			}
			seen[ev.TaskID] = true
			turn.Actions = append(turn.Actions, ev)
		case ev.Type == history.EntityOperationSignaled, ev.Type == history.EntityUnlockSent:
			turn.Actions = append(turn.Actions, ev) // one way: no task opens
		default:
			return nil, fmt.Errorf("remote orchestrator %q produced a %s event, which durable does not take from a worker", r.name, ev.Type)
		}
		if turn.Done && ev != res.Events[len(res.Events)-1] {
			return nil, fmt.Errorf("remote orchestrator %q acted after it ended", r.name)
		}
	}
	turn.Events = append(append([]*history.Event{}, newEvents...), res.Events...)
	if res.CustomStatus != nil {
		turn.CustomStatus, turn.CustomStatusChanged = res.CustomStatus, true
	}
	for _, ev := range turn.Events {
		r.track(ev)
	}
	if turn.Done {
		r.releaseAtEnd(turn)
	}
	turn.Suspended = r.suspended
	// The worker has now seen the committed events it had not (the
	// start's) and this turn's.
	r.past = append(append(r.past, r.unsent...), turn.Events...)
	r.unsent = nil
	return turn, nil
}

// releaseAtEnd releases, as a Go execution does when it ends, the locks
// the worker's code still holds or is acquiring: an EntityUnlockSent
// before the turn's last event (the end).
func (r *remoteExecution) releaseAtEnd(turn *orchestration.Turn) {
	var release []string
	release = append(release, r.held...)
	for _, ev := range r.OpenTasks() {
		if ev.Type == history.EntityLockRequested {
			var set []string
			_ = json.Unmarshal(ev.Payload, &set)
			release = append(release, set...)
		}
	}
	if len(release) == 0 || len(turn.Events) == 0 {
		return
	}
	slices.Sort(release)
	payload, _ := json.Marshal(slices.Compact(release))
	end := turn.Events[len(turn.Events)-1]
	unlock := &history.Event{Type: history.EntityUnlockSent, Timestamp: end.Timestamp, TaskID: -1, Payload: payload}
	turn.Events = append(append(turn.Events[:len(turn.Events)-1:len(turn.Events)-1], unlock), end)
	turn.Actions = append(turn.Actions, unlock)
	r.track(unlock)
}

// ErrorTypeInvalidWorkerAnswer is the ErrorType of the failure of a remote
// orchestration whose worker answered a turn with actions that cannot be
// recorded (a task id used twice, an event kind a worker cannot produce).
const ErrorTypeInvalidWorkerAnswer = "InvalidWorkerAnswer"

// remoteTurn is a turn handed to a worker, until its answer.
type remoteTurn struct {
	exec     *remoteExecution
	incoming []*history.Event // as taken from the actor, given back if the turn is withdrawn
	events   []*history.Event // what the worker was shown as new
	seqs     []uint64
	replies  []replier
	keys     []string
	cancel   context.CancelFunc
}

// takeRemoteDone handles a worker's answer that arrived during a commit,
// once that commit has returned.
func (a *instanceActor) takeRemoteDone(ctx actor.Context) {
	if m := a.remoteDone; m != nil && !a.committing {
		a.remoteDone = nil
		a.handleRemoteTurnDone(ctx, m)
	}
}

// remoteTurnDone carries a worker's answer to the actor.
type remoteTurnDone struct {
	turn   *remoteTurn
	result *RemoteResult
	err    error
}

// startRemoteTurn hands the events that arrived (and those committed but
// not shown yet) to a worker; false if there is nothing to hand.
func (a *instanceActor) startRemoteTurn(ctx actor.Context, r *remoteExecution) bool {
	if len(a.incoming) == 0 && !r.pending() {
		return false
	}
	incoming, seqs, replies := a.takeIncoming()
	now := unixTime(a.now())
	var events []*history.Event
	if len(incoming) > 0 {
		events = append(events, &history.Event{Type: history.OrchestratorStarted, Timestamp: now})
		for _, ev := range incoming {
			if ev.Timestamp.IsZero() {
				ev.Timestamp = now
			}
			events = append(events, ev)
		}
	}
	shown := append(append([]*history.Event{}, r.unsent...), events...)
	rctx, cancel := context.WithCancel(a.node.activityCtx)
	t := &remoteTurn{exec: r, incoming: incoming, events: events, seqs: seqs, replies: replies, keys: a.turnKeys, cancel: cancel}
	a.turnKeys = nil
	a.remote = t
	self, root := ctx.Self(), ctx.ActorSystem().Root
	r.runner.RunTurn(rctx, RemoteTurn{
		InstanceID: a.id, ExecutionID: r.executionID, Name: r.name,
		Past: r.past, New: shown, Now: now,
	}, func(res *RemoteResult, err error) {
		root.Send(self, &remoteTurnDone{turn: t, result: res, err: err})
	})
	return true
}

// handleRemoteTurnDone commits a worker's answer as the turn, or gives the
// events back for the next turn if the turn was withdrawn or refused.
func (a *instanceActor) handleRemoteTurnDone(ctx actor.Context, m *remoteTurnDone) {
	if a.remote != m.turn {
		return // a turn of an execution that has ended meanwhile
	}
	if a.committing {
		// Another commit (an inbox write, an outbox flush, a stray
		// timer's delete) is in flight: its end takes the answer.
		a.remoteDone = m
		return
	}
	t := m.turn
	a.remote = nil
	t.cancel()
	var turn *orchestration.Turn
	err := m.err
	if err == nil {
		turn, err = t.exec.finish(t.events, m.result)
		if err != nil {
			// The worker's code asked for what cannot be recorded: the
			// execution fails, saying why, rather than waiting for ever.
			turn, err = t.exec.finish(t.events, &RemoteResult{Events: []*history.Event{{
				Type: history.ExecutionCompleted, Timestamp: unixTime(a.now()),
				Failure: &history.Failure{ErrorType: ErrorTypeInvalidWorkerAnswer, Message: err.Error()},
			}}})
		}
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			a.logger().Error("remote orchestration turn failed; its events wait for the next turn", "err", err)
		}
		// Nothing was committed: the events go back, first in line.
		a.incoming = append(t.incoming, a.incoming...)
		a.inboxSeqs = append(t.seqs, a.inboxSeqs...)
		a.replies = append(t.replies, a.replies...)
		a.incomingKeys = append(t.keys, a.incomingKeys...)
		for _, ev := range t.incoming {
			if ev.Type.IsCompletion() {
				a.queueKey(ev)
			}
		}
		a.afterRemoteTurn(ctx, false)
		return
	}
	if len(turn.Events) == 0 {
		a.afterRemoteTurn(ctx, true)
		return
	}
	a.turnKeys = t.keys
	a.commitTurn(ctx, turn, t.seqs, t.replies) // its commit's end handles what waited
}

func (a *instanceActor) queueKey(ev *history.Event) {
	if a.queuedTasks == nil {
		a.queuedTasks = map[queuedKey]bool{}
	}
	a.queuedTasks[queuedKey{ev.Type, ev.TaskID}] = true
}

// afterRemoteTurn handles what waited for a turn that committed nothing.
// A withdrawn turn is not retried at once (its worker may be gone); the
// next request or result starts it again.
func (a *instanceActor) afterRemoteTurn(ctx actor.Context, retry bool) {
	deferred := a.deferred
	a.deferred = nil
	for _, m := range deferred {
		a.handleRequest(ctx, m)
	}
	if retry {
		a.maybeTurn(ctx)
	}
}

// withdrawRemoteTurn ends the turn a worker holds (a terminate must not wait
// for a worker that may never come).
func (a *instanceActor) withdrawRemoteTurn() {
	if a.remote != nil {
		a.remote.cancel()
	}
}

// startRemote starts an instance of a remote orchestrator: one commit
// writes its record (Pending) and, in its inbox, the ExecutionStarted
// event, and acknowledges the start. The first worker turn takes the event
// from the inbox like any delivered message; if the node stops first,
// recovery finds the inbox entry and hands the turn out again.
func (a *instanceActor) startRemote(ctx actor.Context, msg *startInstance, rec *persistence.InstanceRecord, b *persistence.Batch, started *history.Event, fail func(error)) {
	prev := a.rec
	rec.Flags |= persistence.FlagUsesInbox
	seq := a.store.NextInboxSeq()
	b.PutInbox(a.id, seq, history.Marshal(started))
	b.PutInstanceOver(prev, rec)
	var replies []replier
	if msg.reply != nil {
		replies = append(replies, msg.reply)
	}
	a.commit(ctx, b, replies, recordWritten(rec), func(err error) {
		if err != nil {
			a.exec = nil
			if msg.reply == nil {
				fail(err)
			}
			return
		}
		a.rec = rec
		a.incoming = append([]*history.Event{started}, a.incoming...)
		a.inboxSeqs = append([]uint64{seq}, a.inboxSeqs...)
	})
}

// raiseToInbox records an event raised to a remote instance in its inbox
// and acknowledges it once that is durable, without waiting for a worker:
// the next worker turn takes it from the inbox, like a delivered message,
// and recovery finds it there if the node stops first.
func (a *instanceActor) raiseToInbox(ctx actor.Context, m *raiseEvent) {
	ev := &history.Event{Type: history.EventRaised, Name: m.name, Payload: m.payload}
	rec := *a.rec
	rec.Flags |= persistence.FlagUsesInbox
	rec.RequestKeys = rememberKeys(rec.RequestKeys, m.key)
	seq := a.store.NextInboxSeq()
	b := &persistence.Batch{}
	b.PutInbox(a.id, seq, history.Marshal(ev))
	b.PutInstanceOver(a.rec, &rec)
	a.commit(ctx, b, []replier{m.reply}, recordWritten(&rec), func(err error) {
		if err != nil {
			return
		}
		a.rec = &rec
		a.incoming = append(a.incoming, ev)
		a.inboxSeqs = append(a.inboxSeqs, seq)
	})
}
