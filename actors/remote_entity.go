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

// Remote entities: entity code that runs in another process (a worker of
// the Durable Task sidecar protocol, package sidecar). The entity actor,
// its record, inbox, outbox, locks and de-duplication are the same as for
// Go code; only the running of operations differs.
//
// A remote entity takes what arrives in two steps:
//
//  1. intake: every message that arrives (client signals, calls and
//     signals from instances and entities, lock requests and releases) is
//     de-duplicated and written to the entity's inbox, with a due-timer
//     entry, in one commit; then the callers are answered and the senders'
//     outboxes acknowledged. So nobody waits for a worker, and a node
//     restart finds the messages (the timer entry activates the entity);
//  2. batch: the inbox is let through in order as locks and schedules
//     allow, as a Go batch is (drainQueue); lock requests, releases and
//     the client's delete apply at once, the operations go to a worker in
//     ONE batch with the entity's state. The worker's answer (a result per
//     operation, the new state, the signals and starts the operations
//     sent) is committed with the inbox deletions, the new lock and the
//     outbox messages in one transaction, as a Go batch is.
//
// While a batch is out the entity takes no other batch: later operations
// wait in the inbox, in order. The plan of a batch changes nothing in the
// actor until the answer is committed, so a batch that is withdrawn (the
// node stops) or refused (the worker reported a failure of the whole
// batch) is planned again from the inbox later; the worker's own failure
// waits 50 ms doubling to 5 s before the next try.

// RemoteEntities is implemented by a Registry whose entities may run in
// other processes: the registry decides, per name, whether Go code or
// remote workers serve it.
type RemoteEntities interface {
	// EntityServedRemotely reports whether remote workers serve entity
	// name (as given in its id).
	EntityServedRemotely(name string) bool
	// RunEntityBatch hands one batch to a worker and calls done once, from
	// any goroutine, with the worker's answer or an error (ctx ended: the
	// batch was withdrawn; or the worker failed the whole batch).
	RunEntityBatch(ctx context.Context, batch RemoteEntityBatch, done func(*RemoteEntityResult, error))
}

// RemoteEntityBatch is a batch of operations of one remote entity.
type RemoteEntityBatch struct {
	// EntityID is the entity's id, "@name@key".
	EntityID string
	// Name is the entity's name.
	Name string
	// State is the entity's state before the batch (JSON; HasState false:
	// none).
	State    []byte
	HasState bool
	// Operations are the operations to run, in order (never empty).
	Operations []RemoteOperation
}

// RemoteOperation is one operation of a remote entity's batch.
type RemoteOperation struct {
	// Name is the operation's name; Input its input (JSON, nil: none).
	Name  string
	Input []byte
	// RequestID names the operation to the worker.
	RequestID string
	// OneWay is true for a signal, false for a call that an orchestration
	// waits on.
	OneWay bool
}

// RemoteEntityResult is what a worker's entity code did with a batch.
type RemoteEntityResult struct {
	// Results are the operations' outcomes, one per operation, in order.
	Results []RemoteOperationResult
	// State is the entity's state after the batch (HasState false: the
	// entity has no state). A failed operation's changes are not in it:
	// the worker rolled them back.
	State    []byte
	HasState bool
	// Signals and Starts are the messages the operations that succeeded
	// sent, in order.
	Signals []orchestration.EntitySignal
	Starts  []orchestration.OrchestrationStart
}

// RemoteOperationResult is one operation's outcome: its result (JSON, nil:
// none), or its failure.
type RemoteOperationResult struct {
	Result  []byte
	Failure *history.Failure
}

// remoteEntityBatch is a batch planned from the inbox and handed to a
// worker, until its answer is committed.
type remoteEntityBatch struct {
	now     time.Time
	drained []queued // taken from the inbox, in order
	// lock is the entity's lock after the batch; state and hasState its
	// state before the operations (a client delete may have cleared it).
	lock     *EntityLock
	state    []byte
	hasState bool
	// steps are the batch's effects in order: a message from a lock or a
	// delete (send), or an operation (op >= 0, its index in ops).
	steps   []remoteStep
	ops     []*history.Event
	applied bool // a message took effect (LastOp moves)
	cancel  context.CancelFunc
}

type remoteStep struct {
	send *history.Event
	op   int
}

// remoteBatchDone carries a worker's answer to the actor.
type remoteBatchDone struct {
	batch  *remoteEntityBatch
	result *RemoteEntityResult
	err    error
}

// remoteRunner is the registry's remote entities if they serve this
// entity, else nil.
func (a *entityActor) remoteRunner() RemoteEntities {
	if r, ok := a.node.cfg.Registry.(RemoteEntities); ok && r.EntityServedRemotely(a.eid.Name) {
		return r
	}
	return nil
}

// processRemote is process for a remote entity: the intake of what
// arrived, then, with no batch out, the next batch.
func (a *entityActor) processRemote(ctx actor.Context, r RemoteEntities) {
	if m := a.remoteDone; m != nil {
		a.remoteDone = nil
		a.finishRemoteBatch(ctx, m)
		return
	}
	now := a.node.cfg.Now()
	if len(a.incoming) > 0 || len(a.acked) > 0 {
		if !a.readSenders() {
			return
		}
		eb := &entityBatch{now: now, work: a.rec, queue: append([]queued(nil), a.queue...), b: &persistence.Batch{}, applies: map[string]uint64{}}
		a.intake(eb)
		sent := a.writeBatch(eb)
		a.commitBatch(ctx, eb, sent)
		return
	}
	if a.remote != nil || a.node.activityCtx.Err() != nil || a.remoteRetry.hold(ctx) || !a.queueReady(now) {
		return // a batch is out, the node is stopping, or a pause after a failure
	}
	rb := a.planRemote(now)
	if len(rb.ops) == 0 {
		a.commitRemote(ctx, rb, nil)
		return
	}
	a.startRemoteBatch(ctx, r, rb)
}

// intake writes every new message in incoming to the inbox (a message due
// later keeps its time; any other is due now, so that the due-timer index
// activates the entity after a restart), dropping duplicates.
func (a *entityActor) intake(eb *entityBatch) {
	for _, in := range a.incoming {
		if in.reply != nil {
			eb.replies = append(eb.replies, in.reply)
		}
		if a.duplicate(eb, in) {
			continue // a stale release is dropped when it is let through
		}
		msg := in.msg
		if msg.FireAt.IsZero() {
			cp := *msg
			cp.FireAt = eb.now.UTC()
			msg = &cp
		}
		seq := a.store.NextInboxSeq()
		eb.b.PutInbox(a.id, seq, history.Marshal(msg))
		eb.b.PutTimer(a.id, seq, msg.FireAt)
		eb.timers = append(eb.timers, msg.FireAt)
		eb.queue = append(eb.queue, queued{seq: seq, msg: msg})
	}
	a.incoming = nil
}

// isOperation reports whether msg runs entity code (not the client's
// delete).
func isOperation(msg *history.Event) bool {
	return (msg.Type == history.EntityOperationSignaled || msg.Type == history.EntityOperationCalled) && msg.Reason != clientDeleteReason
}

// planRemote lets the inbox through as drainQueue does, without changing
// the actor: locks and deletes apply to the plan, operations are
// collected for the worker. A delete after an operation ends the batch (it
// must see the operations' state).
func (a *entityActor) planRemote(now time.Time) *remoteEntityBatch {
	work := a.rec
	rb := &remoteEntityBatch{now: now}
	queue := append([]queued(nil), a.queue...)
	for progress := true; progress; {
		progress = false
		for i, q := range queue {
			if blocked(&work, q.msg) || q.msg.FireAt.After(now) {
				continue
			}
			if q.msg.Reason == clientDeleteReason && len(rb.ops) > 0 {
				progress = false
				break
			}
			queue = append(queue[:i:i], queue[i+1:]...)
			rb.drained = append(rb.drained, q)
			progress = true
			if staleUnlock(&work, q.msg) {
				break
			}
			rb.applied = true
			if isOperation(q.msg) {
				rb.steps = append(rb.steps, remoteStep{op: len(rb.ops)})
				rb.ops = append(rb.ops, q.msg)
				break
			}
			for _, ev := range a.apply(&work, q.msg, nil) {
				rb.steps = append(rb.steps, remoteStep{send: ev, op: -1})
			}
			break
		}
	}
	rb.lock, rb.state, rb.hasState = work.Lock, work.State, work.HasState
	return rb
}

// startRemoteBatch hands the batch's operations to a worker.
func (a *entityActor) startRemoteBatch(ctx actor.Context, r RemoteEntities, rb *remoteEntityBatch) {
	batch := RemoteEntityBatch{EntityID: a.id, Name: a.eid.Name, State: rb.state, HasState: rb.hasState}
	for _, op := range rb.ops {
		batch.Operations = append(batch.Operations, RemoteOperation{
			Name: op.Name, Input: op.Payload, OneWay: op.Type == history.EntityOperationSignaled,
			RequestID: fmt.Sprintf("%s#%d", a.id, rb.drainedSeq(op)),
		})
	}
	rctx, cancel := context.WithCancel(a.node.activityCtx)
	rb.cancel = cancel
	a.remote = rb
	self, root := ctx.Self(), ctx.ActorSystem().Root
	r.RunEntityBatch(rctx, batch, func(res *RemoteEntityResult, err error) {
		root.Send(self, &remoteBatchDone{batch: rb, result: res, err: err})
	})
}

// drainedSeq is the inbox seq of operation op.
func (rb *remoteEntityBatch) drainedSeq(op *history.Event) uint64 {
	for _, q := range rb.drained {
		if q.msg == op {
			return q.seq
		}
	}
	return 0
}

// takeRemoteDone takes a worker's answer: at once, or after the commit in
// flight.
func (a *entityActor) takeRemoteDone(ctx actor.Context, m *remoteBatchDone) {
	if a.remote != m.batch {
		return // the batch was withdrawn meanwhile
	}
	a.remoteDone = m
	a.process(ctx)
}

// finishRemoteBatch commits a worker's answer, or lets the batch be
// planned again if it was withdrawn or failed.
func (a *entityActor) finishRemoteBatch(ctx actor.Context, m *remoteBatchDone) {
	rb := m.batch
	a.remote = nil
	rb.cancel()
	err := m.err
	if err == nil {
		err = checkRemoteResult(rb, m.result)
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			a.logger().Error("remote entity batch failed; its operations run again", "err", err)
			a.remoteRetry.failed()
		}
		a.process(ctx)
		return
	}
	a.remoteRetry.succeeded()
	a.commitRemote(ctx, rb, m.result)
}

// checkRemoteResult refuses an answer that does not fit its batch.
func checkRemoteResult(rb *remoteEntityBatch, res *RemoteEntityResult) error {
	if res == nil {
		return errors.New("remote entity: no result")
	}
	if len(res.Results) != len(rb.ops) {
		return fmt.Errorf("remote entity: %d results for %d operations", len(res.Results), len(rb.ops))
	}
	return nil
}

// commitRemote commits a planned batch with the worker's answer (nil for
// a batch without operations): the inbox entries it took out, the lock,
// the state, the responses to callers and the messages the operations
// sent, in one transaction.
func (a *entityActor) commitRemote(ctx actor.Context, rb *remoteEntityBatch, res *RemoteEntityResult) {
	eb := &entityBatch{now: rb.now, work: a.rec, b: &persistence.Batch{}, applies: map[string]uint64{}}
	eb.work.Lock = rb.lock
	eb.work.State, eb.work.HasState = rb.state, rb.hasState
	taken := make(map[uint64]bool, len(rb.drained))
	for _, q := range rb.drained {
		taken[q.seq] = true
		eb.b.DeleteInbox(a.id, q.seq)
		if !q.msg.FireAt.IsZero() {
			eb.b.DeleteTimer(a.id, q.seq, q.msg.FireAt)
		}
	}
	eb.applied = rb.applied
	eb.queue = slices.DeleteFunc(append([]queued(nil), a.queue...), func(q queued) bool { return taken[q.seq] })
	results := a.limitRemoteResult(rb, res)
	for _, st := range rb.steps {
		if st.op < 0 {
			eb.sends = append(eb.sends, st.send)
			continue
		}
		msg, out := rb.ops[st.op], results[st.op]
		if out.Failure != nil && msg.Type == history.EntityOperationSignaled {
			a.logger().Warn("entity operation failed", "operation", msg.Name, "err", out.Failure.Error())
		}
		if msg.Type == history.EntityOperationCalled {
			eb.sends = append(eb.sends, callResponse(msg, out.Result, out.Failure))
		}
		if st.op == len(rb.ops)-1 && res != nil {
			// The worker does not say which operation sent what: the
			// messages leave after the last operation's response, before
			// what later lock messages send.
			eb.work.State, eb.work.HasState = res.State, res.HasState
			eb.sends = a.outcomeSends(orchestration.EntityOutcome{Signals: res.Signals, Starts: res.Starts}, eb.sends)
		}
	}
	sent := a.writeBatch(eb)
	a.commitBatch(ctx, eb, sent)
}

// limitRemoteResult applies the payload limit: a state over it rolls the
// whole batch back (every operation fails, nothing is sent); a result over
// it fails its operation.
func (a *entityActor) limitRemoteResult(rb *remoteEntityBatch, res *RemoteEntityResult) []RemoteOperationResult {
	if res == nil {
		return nil
	}
	rollBack := func(f *history.Failure) []RemoteOperationResult {
		out := make([]RemoteOperationResult, len(res.Results))
		for i := range out {
			out[i] = RemoteOperationResult{Failure: f}
		}
		res.State, res.HasState, res.Signals, res.Starts = rb.state, rb.hasState, nil, nil
		return out
	}
	if len(res.State) > 0 && !json.Valid(res.State) {
		// The stored record embeds the state as it is (EntityRecord.encode).
		return rollBack(&history.Failure{ErrorType: "InvalidEntityState", Message: "the entity batch made a state that is not valid JSON"})
	}
	max := a.node.cfg.Limits.MaxPayloadBytes
	if max <= 0 {
		return res.Results
	}
	if len(res.State) > max {
		return rollBack(limitFailure("the entity batch made a state of %d bytes, over the payload limit of %d (Options.MaxPayloadBytes)", len(res.State), max))
	}
	out := append([]RemoteOperationResult(nil), res.Results...)
	for i, r := range out {
		if r.Failure == nil && len(r.Result) > max {
			out[i] = RemoteOperationResult{Failure: limitFailure("entity operation %q made a result of %d bytes, over the payload limit of %d (Options.MaxPayloadBytes)", rb.ops[i].Name, len(r.Result), max)}
		}
	}
	return out
}
