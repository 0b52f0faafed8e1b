package actors

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/internal/ids"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// isEntityID tells entity ids ("@name@key") from instance ids, which may
// not start with "@".
func isEntityID(id string) bool { return strings.HasPrefix(id, "@") }

// EntityRecord is the persisted state of an entity.
type EntityRecord struct {
	State    json.RawMessage `json:"state,omitempty"`
	HasState bool            `json:"hasState,omitempty"`
	LastOp   time.Time       `json:"lastOp"`
	Lock     *EntityLock     `json:"lock,omitempty"`
	// Keys are the idempotency keys of the last client signals applied
	// (at most persistence.MaxRequestKeys, oldest first): a retried signal
	// whose key is here has had its effect already. (Messages from
	// instances and entities are de-duplicated by their sender's outbox
	// seq instead, kept under keys of their own.)
	Keys []string `json:"keys,omitempty"`
}

// EntityLock is the critical section holding an entity.
type EntityLock struct {
	Owner     string   `json:"owner"`
	Execution string   `json:"execution"`
	TaskID    int64    `json:"taskId"`
	Set       []string `json:"set"`
}

// encode returns the record as it is stored: JSON, as json.Marshal writes
// it, except that the state is embedded as it is rather than compacted
// again. It is valid JSON already: what an entity's code set went through
// json.Marshal, and a remote worker's state is checked when it arrives
// (limitRemoteResult). The
// record of an entity that holds no lock and keeps no keys, the usual one,
// is written without reflection.
func (r *EntityRecord) encode() []byte {
	if r.Lock != nil || len(r.Keys) > 0 || r.LastOp.Year() < 0 || r.LastOp.Year() > 9999 {
		data, _ := json.Marshal(r)
		return data
	}
	b := make([]byte, 0, len(r.State)+64)
	b = append(b, '{')
	if len(r.State) > 0 {
		b = append(b, `"state":`...)
		b = append(b, r.State...)
		b = append(b, ',')
	}
	if r.HasState {
		b = append(b, `"hasState":true,`...)
	}
	b = append(b, `"lastOp":"`...)
	b = r.LastOp.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// DecodeEntityRecord decodes a stored entity record.
func DecodeEntityRecord(b []byte) (*EntityRecord, error) {
	var r EntityRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode entity record: %w", err)
	}
	return &r, nil
}

// outgoing is a committed outbox message.
type outgoing struct {
	seq uint64
	msg *history.Event
}

// queued is a message waiting in the entity's inbox: behind another
// orchestration's lock, or for its scheduled time.
type queued struct {
	seq uint64
	msg *history.Event
}

// entityActor is the persistent actor of one durable entity: it applies
// operations one at a time in arrival order, commits the state, the ids of
// the messages applied and the messages it sends, all in one transaction
// per batch, and passivates when idle.
type entityActor struct {
	node      *Node
	partition *actor.PID
	store     *persistence.Partition
	id        string
	eid       orchestration.EntityID
	log       *slog.Logger

	rec    EntityRecord
	broken error
	queue  []queued

	incoming []*delivery
	inflightCommit

	idle     idleTracker
	outbox   map[uint64]*history.Event // sent, not yet acknowledged
	acked    []uint64                  // acknowledged, to delete with the next commit
	resender outboxResender
	// storeRetry holds processing back after commits the store refused.
	storeRetry storeBackoff
	// retryable are the deliveries from outboxes in the batch being
	// committed: if the commit fails they are taken again.
	retryable []*delivery

	// seen caches, per sender, the highest outbox seq applied (the store
	// holds one key per sender).
	seen map[string]uint64

	// remote is the batch a worker holds, for an entity remote workers
	// serve (remote_entity.go); remoteDone its answer, taken when no
	// commit is in flight; remoteRetry holds the next batch back after a
	// worker failed one.
	remote      *remoteEntityBatch
	remoteDone  *remoteBatchDone
	remoteRetry storeBackoff
}

// maxSeenCache bounds the senders an entity actor remembers between
// commits; the store has them all.
const maxSeenCache = 4096

// lastApplied returns the highest outbox seq of sender this entity applied.
func (a *entityActor) lastApplied(sender string) (uint64, error) {
	if seq, ok := a.seen[sender]; ok {
		return seq, nil
	}
	seq, err := a.store.LoadEntitySeen(a.id, sender)
	if err != nil {
		return 0, err
	}
	if a.seen == nil {
		a.seen = map[string]uint64{}
	}
	a.seen[sender] = seq
	return seq, nil
}

func newEntityActor(n *Node, partition *actor.PID, store *persistence.Partition, id string) *entityActor {
	eid, _ := orchestration.ParseEntityID(id)
	return &entityActor{node: n, partition: partition, store: store, id: id, eid: eid, outbox: map[uint64]*history.Event{}}
}

func (a *entityActor) Receive(ctx actor.Context) {
	a.idle.observe(ctx, a.node.cfg.IdleTimeout)
	a.node.observeActor(ctx, KindEntity)
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.load(ctx)
		a.process(ctx)
	case *delivery:
		if a.broken != nil {
			replyTo(msg.reply, a.broken)
			return
		}
		a.incoming = append(a.incoming, msg)
		a.process(ctx)
	case *delivered:
		if _, ok := a.outbox[msg.seq]; ok {
			delete(a.outbox, msg.seq)
			a.acked = append(a.acked, msg.seq)
			a.process(ctx)
		}
	case *timerFired:
		a.process(ctx) // due queue entries are taken by process
	case *commitResult:
		a.end()
		if msg.err != nil {
			a.logger().Error("entity commit failed; reloading", "err", msg.err)
			if !errors.Is(msg.err, persistence.ErrClosed) {
				// What the failed batch took from other actors' outboxes
				// goes again, ahead of what arrived since (the reload
				// reads what was applied, so nothing applies twice); a
				// sender would not send it again before it restarts.
				a.incoming = append(append([]*delivery(nil), a.retryable...), a.incoming...)
				a.queue, a.acked = nil, nil
				a.outbox = map[uint64]*history.Event{}
				a.load(ctx)
				// A store that cannot write now is not asked again at
				// once: each failure in a row doubles the wait.
				a.storeRetry.failed()
			}
		} else {
			a.storeRetry.succeeded()
		}
		a.retryable = a.retryable[:0]
		a.process(ctx)
	case *storeRetryDue:
		a.storeRetry.armed = false
		a.remoteRetry.armed = false
		a.process(ctx)
	case *remoteBatchDone:
		a.takeRemoteDone(ctx, msg)
	case *idleCheck, *passivateNow:
		a.idle.handle(ctx, a.node, a.partition, a.id, a.isIdle())
	case *resendTick:
		a.resender.resend(ctx, a.node, a.id, a.outbox)
	case *actor.Stopping, *actor.Restarting:
		a.idle.stop()
		a.resender.stop()
		if a.remote != nil {
			a.remote.cancel() // withdrawn: the inbox keeps its operations
		}
		a.wait()
	case *actor.Stopped:
		ctx.Send(a.partition, &actorStopped{pid: ctx.Self()})
	case *wake, *subOrchestrationDone:
	}
}

func (a *entityActor) logger() *slog.Logger {
	if a.log == nil {
		a.log = a.node.log.With("entityId", a.id)
	}
	return a.log
}

func (a *entityActor) isIdle() bool {
	if a.remote != nil || a.remoteDone != nil || (a.remoteRunner() != nil && a.queueReady(a.node.cfg.Now())) {
		return false // a remote batch is out, or waits to go
	}
	return !a.committing && len(a.incoming) == 0 && len(a.outbox) == 0 && len(a.acked) == 0
}

func (a *entityActor) load(ctx actor.Context) {
	// After a failed commit the cache may hold seqs that were never
	// committed: start from the store.
	a.seen = nil
	data, err := a.store.LoadEntity(a.id)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		a.rec = EntityRecord{}
	case err != nil:
		a.broken = fmt.Errorf("load entity %s: %w", a.id, err)
		a.logger().Error("entity left as it is on disk", "err", a.broken)
		return
	default:
		rec, err := DecodeEntityRecord(data)
		if err != nil {
			a.broken = fmt.Errorf("load entity %s: %w", a.id, err)
			a.logger().Error("entity left as it is on disk", "err", a.broken)
			return
		}
		a.rec = *rec
	}
	inbox, err := a.store.LoadInbox(a.id)
	if err != nil {
		a.broken = fmt.Errorf("load inbox of entity %s: %w", a.id, err)
		return
	}
	for _, m := range inbox {
		ev, err := history.Unmarshal(m.Data)
		if err != nil {
			a.logger().Error("dropping undecodable queued message", "seq", m.Seq, "err", err)
			continue
		}
		a.queue = append(a.queue, queued{seq: m.Seq, msg: ev})
	}
	resendOutbox(a.node, a.store, a.id, a.outbox, a.logger)
	a.resender.arm(ctx, a.node, len(a.outbox))
}

// staleUnlock: a release from an orchestration that does not hold the lock
// (a duplicate, or one sent for a lock never granted); it is dropped.
func staleUnlock(rec *EntityRecord, msg *history.Event) bool {
	return msg.Type == history.EntityUnlockSent && (rec.Lock == nil || rec.Lock.Owner != msg.ParentInstanceID)
}

// blocked: another orchestration holds the lock.
func blocked(rec *EntityRecord, msg *history.Event) bool {
	return rec.Lock != nil && msg.ParentInstanceID != rec.Lock.Owner
}

// entityBatch is what one commit of an entity writes and, once durable,
// answers and sends.
type entityBatch struct {
	now     time.Time
	work    EntityRecord // the record the commit writes
	queue   []queued     // the inbox after the batch
	b       *persistence.Batch
	sends   []*history.Event // messages the applied operations send
	replies []replier        // clients to answer
	acks    []*delivery      // deliveries from outboxes to acknowledge
	timers  []time.Time      // due times of scheduled signals queued
	applied bool             // an operation ran (LastOp moves)
	// applies holds, per sender, the highest outbox seq applied in this
	// batch.
	applies map[string]uint64
}

// process applies what arrived (and what the queue lets through) as one
// batch: one commit for the state, the applied message ids, the queue and
// the outgoing messages. Callers are answered and messages sent only after
// that commit. The steps, in order:
//
//  1. read what was applied from each sender (before changing anything: on
//     a failed read the batch stays in incoming, retried with the next
//     message or activation);
//  2. take the incoming messages: drop redeliveries and retried client
//     signals, queue what a lock or a schedule holds back, apply the rest;
//  3. let the queue through, in order, as far as locks and times allow;
//  4. write the outbox (acknowledged entries out, new messages in), the
//     senders' applied seqs and the record;
//  5. commit, then answer and send.
func (a *entityActor) process(ctx actor.Context) {
	if a.committing || a.broken != nil || a.storeRetry.hold(ctx) {
		return
	}
	if r := a.remoteRunner(); r != nil {
		a.processRemote(ctx, r)
		return
	}
	now := a.node.cfg.Now()
	if len(a.incoming) == 0 && len(a.acked) == 0 && !a.queueReady(now) {
		return
	}
	if !a.readSenders() {
		return
	}
	eb := &entityBatch{now: now, work: a.rec, queue: append([]queued(nil), a.queue...), b: &persistence.Batch{}, applies: map[string]uint64{}}
	a.takeIncoming(eb)
	a.drainQueue(eb)
	sent := a.writeBatch(eb)
	a.commitBatch(ctx, eb, sent)
}

// readSenders loads the highest applied seq of every sender in incoming
// into the cache; false if a read failed.
func (a *entityActor) readSenders() bool {
	for _, in := range a.incoming {
		if in.from != "" {
			if _, err := a.lastApplied(in.from); err != nil {
				a.logger().Error("read what the entity applied", "from", in.from, "err", err)
				return false
			}
		}
	}
	return true
}

// takeIncoming moves incoming into the batch: applied, queued, or dropped
// as a duplicate.
func (a *entityActor) takeIncoming(eb *entityBatch) {
	for _, in := range a.incoming {
		if in.reply != nil {
			eb.replies = append(eb.replies, in.reply)
		}
		if a.duplicate(eb, in) {
			continue
		}
		msg := in.msg
		if staleUnlock(&eb.work, msg) {
			continue // a stale release
		}
		if blocked(&eb.work, msg) || msg.FireAt.After(eb.now) {
			seq := a.store.NextInboxSeq()
			eb.b.PutInbox(a.id, seq, history.Marshal(msg))
			if msg.FireAt.After(eb.now) {
				eb.b.PutTimer(a.id, seq, msg.FireAt)
				eb.timers = append(eb.timers, msg.FireAt)
			}
			eb.queue = append(eb.queue, queued{seq: seq, msg: msg})
			continue
		}
		eb.sends = a.apply(&eb.work, msg, eb.sends)
		eb.applied = true
	}
	a.incoming = nil
}

// duplicate reports whether in has had its effect already, and records it
// as applied otherwise: a message from an outbox at or below its sender's
// highest applied seq (it is acknowledged again), or a client signal whose
// idempotency key the record holds.
func (a *entityActor) duplicate(eb *entityBatch, in *delivery) bool {
	if in.from != "" {
		last, ok := eb.applies[in.from]
		if !ok {
			last = a.seen[in.from] // read by readSenders
		}
		eb.acks = append(eb.acks, in)
		if in.seq <= last {
			return true
		}
		eb.applies[in.from] = in.seq
		return false
	}
	if in.key == "" {
		return false
	}
	if slices.Contains(eb.work.Keys, in.key) {
		return true
	}
	eb.work.Keys = persistence.RememberRequestKey(eb.work.Keys, in.key)
	return false
}

// drainQueue applies the queued messages that no lock or schedule holds
// back any more, in order, until none moves.
func (a *entityActor) drainQueue(eb *entityBatch) {
	for progress := true; progress; {
		progress = false
		for i, q := range eb.queue {
			if blocked(&eb.work, q.msg) || q.msg.FireAt.After(eb.now) {
				continue
			}
			eb.b.DeleteInbox(a.id, q.seq)
			if !q.msg.FireAt.IsZero() {
				eb.b.DeleteTimer(a.id, q.seq, q.msg.FireAt)
			}
			eb.queue = append(eb.queue[:i:i], eb.queue[i+1:]...)
			if !staleUnlock(&eb.work, q.msg) {
				eb.sends = a.apply(&eb.work, q.msg, eb.sends)
				eb.applied = true
			}
			progress = true
			break
		}
	}
}

// writeBatch adds the outbox, the senders' applied seqs and the record to
// the batch, and returns the outbox messages to send once it commits.
func (a *entityActor) writeBatch(eb *entityBatch) []outgoing {
	b := eb.b
	for _, seq := range a.acked {
		b.DeleteOutbox(a.id, seq)
	}
	a.acked = nil
	// Outbox seqs increase per sender and messages leave in seq order:
	// receivers drop anything at or below the highest seq they applied.
	sent := make([]outgoing, 0, len(eb.sends))
	for _, msg := range eb.sends {
		seq := a.store.NextInboxSeq()
		b.PutOutbox(a.id, seq, history.Marshal(msg))
		sent = append(sent, outgoing{seq: seq, msg: msg})
	}
	if eb.applied {
		eb.work.LastOp = eb.now.UTC()
	}
	for sender, seq := range eb.applies {
		b.PutEntitySeen(a.id, sender, seq)
		a.seen[sender] = seq // the commit writes it; a failed commit reloads
	}
	if len(a.seen) > maxSeenCache {
		a.seen = nil
	}
	if !eb.work.HasState && eb.work.Lock == nil && len(eb.queue) == 0 && len(a.outbox) == 0 && len(sent) == 0 {
		b.DeleteEntity(a.id)
	} else {
		b.PutEntity(a.id, eb.work.encode())
	}
	return sent
}

// commitBatch commits the batch (the protocol of inflightCommit); once it
// is durable the callers are answered and what it made durable leaves:
// messages, acknowledgements, timer notices.
func (a *entityActor) commitBatch(ctx actor.Context, eb *entityBatch, sent []outgoing) {
	for _, o := range sent {
		a.outbox[o.seq] = o.msg
	}
	a.resender.arm(ctx, a.node, len(a.outbox))
	// The state is what the commit writes; if it fails, commitResult
	// reloads everything from the store.
	a.rec = eb.work
	a.retryable = append(a.retryable[:0], eb.acks...) // outbox deliveries carry no reply
	a.queue = eb.queue
	parent, root, node, id := a.partition, ctx.ActorSystem().Root, a.node, a.id
	durable := func(err error) {
		for _, r := range eb.replies {
			replyTo(r, err)
		}
		if err != nil {
			return
		}
		for _, o := range sent {
			_ = node.send(o.msg.InstanceID, &delivery{target: o.msg.InstanceID, from: id, seq: o.seq, msg: o.msg})
		}
		for _, in := range eb.acks {
			_ = node.send(in.from, &delivered{id: in.from, seq: in.seq})
		}
		for _, t := range eb.timers {
			root.Send(parent, &timerScheduled{due: t})
		}
	}
	a.begin(ctx, a.store, eb.b, "entity", id, durable, commitWaited)
}

func (a *entityActor) queueReady(now time.Time) bool {
	for _, q := range a.queue {
		if !blocked(&a.rec, q.msg) && !q.msg.FireAt.After(now) {
			return true
		}
	}
	return false
}

// apply runs one message against work and returns sends plus the messages
// it causes.
func (a *entityActor) apply(work *EntityRecord, msg *history.Event, sends []*history.Event) []*history.Event {
	switch msg.Type {
	case history.EntityOperationSignaled, history.EntityOperationCalled:
		var out orchestration.EntityOutcome
		switch fn, ok := a.node.cfg.Registry.Entity(strings.ToLower(a.eid.Name)); {
		case msg.Reason == clientDeleteReason:
			out = orchestration.EntityOutcome{}
		case !ok:
			out = orchestration.EntityOutcome{State: work.State, HasState: work.HasState, Failure: &history.Failure{
				ErrorType: "EntityNotRegistered", Message: fmt.Sprintf("entity %q is not registered", a.eid.Name)}}
		default:
			out = orchestration.RunEntityOperation(fn, a.eid, msg.Name, msg.Payload, work.State, work.HasState, ids.NewString)
			out = a.node.limitEntityOutcome(out, work.State, work.HasState, msg.Name)
		}
		if out.Failure == nil {
			work.State, work.HasState = out.State, out.HasState
			sends = a.outcomeSends(out, sends)
		} else if msg.Type == history.EntityOperationSignaled {
			a.logger().Warn("entity operation failed", "operation", msg.Name, "err", out.Failure.Error())
		}
		if msg.Type == history.EntityOperationCalled {
			sends = append(sends, callResponse(msg, out.Result, out.Failure))
		}
	case history.EntityLockRequested:
		var set []string
		_ = json.Unmarshal(msg.Payload, &set)
		work.Lock = &EntityLock{Owner: msg.ParentInstanceID, Execution: msg.ParentExecutionID, TaskID: msg.ParentTaskID, Set: set}
		next := int(msg.Attempt) + 1
		if next < len(set) {
			fwd := *msg
			fwd.Attempt = int32(next)
			fwd.InstanceID = set[next]
			sends = append(sends, &fwd)
		} else {
			sends = append(sends, &history.Event{Type: history.EntityLockGranted, InstanceID: msg.ParentInstanceID,
				ExecutionID: msg.ParentExecutionID, TaskID: msg.ParentTaskID, Payload: msg.Payload})
		}
	case history.EntityUnlockSent:
		work.Lock = nil
	}
	return sends
}

// outcomeSends returns sends plus the signals and orchestration starts of
// an operation's outcome.
func (a *entityActor) outcomeSends(out orchestration.EntityOutcome, sends []*history.Event) []*history.Event {
	for _, s := range out.Signals {
		target := s.Target.String()
		ev := &history.Event{Type: history.EntityOperationSignaled, InstanceID: target, Name: s.Operation, Payload: s.Input, ParentInstanceID: a.id}
		if !s.At.IsZero() {
			ev.FireAt = s.At.UTC()
		}
		sends = append(sends, ev)
	}
	for _, s := range out.Starts {
		sends = append(sends, &history.Event{Type: history.ExecutionStarted, InstanceID: s.InstanceID, Name: s.Name, Payload: s.Input, ParentInstanceID: a.id})
	}
	return sends
}

// callResponse is the answer to the caller of operation call (an
// EntityOperationCalled event): its result, or its failure.
func callResponse(call *history.Event, result []byte, failure *history.Failure) *history.Event {
	if failure != nil {
		return &history.Event{Type: history.EntityOperationFailed, InstanceID: call.ParentInstanceID,
			ExecutionID: call.ParentExecutionID, TaskID: call.ParentTaskID, Failure: failure}
	}
	return &history.Event{Type: history.EntityOperationCompleted, InstanceID: call.ParentInstanceID,
		ExecutionID: call.ParentExecutionID, TaskID: call.ParentTaskID, Payload: result}
}
