package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/durable-go/durable/history"
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
	// Seen is read from records written before the highest applied seq of
	// each sender moved to keys of its own (persistence.PutEntitySeen); the
	// next commit moves its entries there and writes the record without it.
	Seen map[string]uint64 `json:"seen,omitempty"`
}

// EntityLock is the critical section holding an entity.
type EntityLock struct {
	Owner     string   `json:"owner"`
	Execution string   `json:"execution"`
	TaskID    int64    `json:"taskId"`
	Set       []string `json:"set"`
}

// DecodeEntityRecord decodes a stored entity record.
func DecodeEntityRecord(b []byte) (*EntityRecord, error) {
	var r EntityRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode entity record: %w", err)
	}
	return &r, nil
}

// clone returns the record the next commit writes: Seen is no longer part
// of it.
func (r *EntityRecord) clone() EntityRecord {
	c := *r
	c.Seen = nil
	return c
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

	incoming   []*delivery
	committing bool
	commitDone chan struct{}

	idle   idleTracker
	outbox map[uint64]*history.Event // sent, not yet acknowledged
	acked  []uint64                  // acknowledged, to delete with the next commit

	// seen caches, per sender, the highest outbox seq applied (the store
	// holds one key per sender); legacySeen holds entries of an old record
	// still to be written as keys.
	seen       map[string]uint64
	legacySeen map[string]uint64
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
		a.committing = false
		if msg.err != nil {
			a.logger().Error("entity commit failed; reloading", "err", msg.err)
			if !errors.Is(msg.err, persistence.ErrClosed) {
				a.incoming, a.queue, a.acked = nil, nil, nil
				a.outbox = map[uint64]*history.Event{}
				a.load(ctx)
			}
		}
		a.process(ctx)
	case *idleCheck, *passivateNow:
		a.idle.handle(ctx, a.node, a.partition, a.id, a.isIdle())
	case *actor.Stopping, *actor.Restarting:
		a.idle.stop()
		if a.committing {
			<-a.commitDone
			a.committing = false
		}
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
	return !a.committing && len(a.incoming) == 0 && len(a.outbox) == 0 && len(a.acked) == 0
}

func (a *entityActor) load(ctx actor.Context) {
	// After a failed commit the cache may hold seqs that were never
	// committed: start from the store.
	a.seen, a.legacySeen = nil, nil
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
		if len(rec.Seen) > 0 {
			a.legacySeen = rec.Seen
			a.seen = make(map[string]uint64, len(rec.Seen))
			for sender, seq := range rec.Seen {
				a.seen[sender] = seq
			}
		}
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

// process applies what arrived (and what the queue lets through) as one
// batch: one commit for the state, the applied message ids, the queue and
// the outgoing messages. Callers are answered and messages sent only after
// that commit.
func (a *entityActor) process(ctx actor.Context) {
	if a.committing || a.broken != nil {
		return
	}
	now := a.node.cfg.Now()
	if len(a.incoming) == 0 && len(a.acked) == 0 && !a.queueReady(now) {
		return
	}
	work := a.rec.clone()
	b := &persistence.Batch{}
	var (
		sends   []*history.Event
		replies []chan error
		acks    []*delivery
		timers  []time.Time
		applied bool
	)
	// Read what was applied from each sender before changing anything; on
	// a failed read the batch stays in incoming, retried with the next
	// message or activation.
	for _, in := range a.incoming {
		if in.from != "" {
			if _, err := a.lastApplied(in.from); err != nil {
				a.logger().Error("read what the entity applied", "from", in.from, "err", err)
				return
			}
		}
	}
	queue := append([]queued(nil), a.queue...)
	applies := map[string]uint64{} // senders' highest seqs applied in this batch
	for _, in := range a.incoming {
		if in.from != "" {
			last, ok := applies[in.from]
			if !ok {
				last = a.seen[in.from] // read above
			}
			acks = append(acks, in)
			if in.reply != nil {
				replies = append(replies, in.reply)
			}
			if in.seq <= last {
				continue // a redelivery: applied already
			}
			applies[in.from] = in.seq
		} else if in.reply != nil {
			replies = append(replies, in.reply)
		}
		msg := in.msg
		if staleUnlock(&work, msg) {
			continue // a stale release
		}
		if blocked(&work, msg) || msg.FireAt.After(now) {
			seq := a.store.NextInboxSeq()
			b.PutInbox(a.id, seq, history.Marshal(msg))
			if msg.FireAt.After(now) {
				b.PutTimer(a.id, seq, msg.FireAt)
				timers = append(timers, msg.FireAt)
			}
			queue = append(queue, queued{seq: seq, msg: msg})
			continue
		}
		sends = a.apply(&work, msg, sends)
		applied = true
	}
	a.incoming = nil
	// Let the queue through, in order, as far as locks and times allow.
	for progress := true; progress; {
		progress = false
		for i, q := range queue {
			if blocked(&work, q.msg) || q.msg.FireAt.After(now) {
				continue
			}
			b.DeleteInbox(a.id, q.seq)
			if !q.msg.FireAt.IsZero() {
				b.DeleteTimer(a.id, q.seq, q.msg.FireAt)
			}
			queue = append(queue[:i:i], queue[i+1:]...)
			if !staleUnlock(&work, q.msg) {
				sends = a.apply(&work, q.msg, sends)
				applied = true
			}
			progress = true
			break
		}
	}
	for _, seq := range a.acked {
		b.DeleteOutbox(a.id, seq)
	}
	a.acked = nil
	// Outbox seqs increase per sender and messages leave in seq order:
	// receivers drop anything at or below the highest seq they applied.
	sent := make([]outgoing, 0, len(sends))
	for _, msg := range sends {
		seq := a.store.NextInboxSeq()
		b.PutOutbox(a.id, seq, history.Marshal(msg))
		sent = append(sent, outgoing{seq: seq, msg: msg})
	}
	if applied {
		work.LastOp = now.UTC()
	}
	for sender, seq := range a.legacySeen {
		if _, newer := applies[sender]; !newer {
			b.PutEntitySeen(a.id, sender, seq)
		}
	}
	a.legacySeen = nil
	for sender, seq := range applies {
		b.PutEntitySeen(a.id, sender, seq)
		a.seen[sender] = seq // the commit writes it; a failed commit reloads
	}
	if len(a.seen) > maxSeenCache {
		a.seen = nil
	}
	if !work.HasState && work.Lock == nil && len(queue) == 0 && len(a.outbox) == 0 && len(sent) == 0 {
		b.DeleteEntity(a.id)
	} else {
		data, _ := json.Marshal(&work)
		b.PutEntity(a.id, data)
	}
	for _, o := range sent {
		a.outbox[o.seq] = o.msg
	}
	// The state is what the commit writes; if it fails, commitResult
	// reloads everything from the store.
	a.rec = work
	a.queue = queue
	a.committing = true
	done := make(chan struct{})
	a.commitDone = done
	self, parent, root, store, node, id := ctx.Self(), a.partition, ctx.ActorSystem().Root, a.store, a.node, a.id
	go func() {
		err := store.Commit(context.Background(), b)
		if err != nil {
			err = fmt.Errorf("commit entity %s: %w", id, err)
		}
		for _, r := range replies {
			replyTo(r, err)
		}
		if err == nil {
			// Only what is durable leaves: messages, acknowledgements,
			// timer notices.
			for _, o := range sent {
				_ = node.send(o.msg.InstanceID, &delivery{target: o.msg.InstanceID, from: id, seq: o.seq, msg: o.msg})
			}
			for _, in := range acks {
				_ = node.send(in.from, &delivered{id: in.from, seq: in.seq})
			}
			for _, t := range timers {
				root.Send(parent, &timerScheduled{due: t})
			}
		}
		close(done)
		root.Send(self, &commitResult{err: err})
	}()
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
			out = orchestration.RunEntityOperation(fn, a.eid, msg.Name, msg.Payload, work.State, work.HasState, uuid.NewString)
		}
		if out.Failure == nil {
			work.State, work.HasState = out.State, out.HasState
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
		} else if msg.Type == history.EntityOperationSignaled {
			a.logger().Warn("entity operation failed", "operation", msg.Name, "err", out.Failure.Error())
		}
		if msg.Type == history.EntityOperationCalled {
			resp := &history.Event{Type: history.EntityOperationCompleted, InstanceID: msg.ParentInstanceID,
				ExecutionID: msg.ParentExecutionID, TaskID: msg.ParentTaskID, Payload: out.Result}
			if out.Failure != nil {
				resp = &history.Event{Type: history.EntityOperationFailed, InstanceID: msg.ParentInstanceID,
					ExecutionID: msg.ParentExecutionID, TaskID: msg.ParentTaskID, Failure: out.Failure}
			}
			sends = append(sends, resp)
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
