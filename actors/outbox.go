package actors

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/persistence"
)

// resendOutbox sends again, in seq order, what sender committed to its
// outbox and never saw acknowledged (after a restart), recording it in
// pending; receivers drop duplicates.
func resendOutbox(n *Node, store *persistence.Partition, sender string, pending map[uint64]*history.Event, log func() *slog.Logger) {
	out, err := store.LoadOutbox(sender)
	if err != nil {
		log().Error("load outbox", "err", err)
		return
	}
	for _, m := range out {
		ev, err := history.Unmarshal(m.Data)
		if err != nil {
			log().Error("dropping undecodable outbox message", "seq", m.Seq, "err", err)
			continue
		}
		pending[m.Seq] = ev
		_ = n.send(ev.InstanceID, &delivery{target: ev.InstanceID, from: sender, seq: m.Seq, msg: ev})
	}
}

// entityMessages turns an entity action of the orchestration into the
// messages its outbox must deliver.
func (a *instanceActor) entityMessages(ev *history.Event, executionID string) []*history.Event {
	switch ev.Type {
	case history.EntityOperationCalled, history.EntityOperationSignaled:
		return []*history.Event{{Type: ev.Type, InstanceID: ev.InstanceID, Name: ev.Name, Payload: ev.Payload, FireAt: ev.FireAt,
			ParentInstanceID: a.id, ParentExecutionID: executionID, ParentTaskID: ev.TaskID}}
	case history.EntityLockRequested:
		var set []string
		if json.Unmarshal(ev.Payload, &set) != nil || len(set) == 0 {
			return nil
		}
		return []*history.Event{{Type: ev.Type, InstanceID: set[0], Payload: ev.Payload,
			ParentInstanceID: a.id, ParentExecutionID: executionID, ParentTaskID: ev.TaskID}}
	case history.EntityUnlockSent:
		return a.unlockMessages(ev.Payload)
	}
	return nil
}

func (a *instanceActor) unlockMessages(setJSON []byte) []*history.Event {
	var set []string
	_ = json.Unmarshal(setJSON, &set)
	out := make([]*history.Event, 0, len(set))
	for _, id := range set {
		out = append(out, &history.Event{Type: history.EntityUnlockSent, InstanceID: id, ParentInstanceID: a.id})
	}
	return out
}

// outboxOps adds to b the deletion of acknowledged outbox messages and the
// writing of the queued ones, and returns what to send once b commits.
func (a *instanceActor) outboxOps(b *persistence.Batch) []outgoing {
	for _, seq := range a.ackedOutbox {
		b.DeleteOutbox(a.id, seq)
	}
	a.ackedOutbox = nil
	out := make([]outgoing, 0, len(a.extraOutbox))
	for _, msg := range a.extraOutbox {
		seq := a.store.NextInboxSeq()
		b.PutOutbox(a.id, seq, history.Marshal(msg))
		out = append(out, outgoing{seq: seq, msg: msg})
	}
	a.extraOutbox = nil
	return out
}

// outboxWithRecord is outboxOps for a batch that also writes the instance
// record: it marks the record as using the outbox, and takes the pending
// acknowledgements to send after the commit.
func (a *instanceActor) outboxWithRecord(b *persistence.Batch, rec *persistence.InstanceRecord) ([]outgoing, []*delivery) {
	sent := a.outboxOps(b)
	if len(sent) > 0 {
		rec.Flags |= persistence.FlagUsesOutbox
	}
	acks := a.pendingAcks
	a.pendingAcks = nil
	return sent, acks
}

// sendOutbox sends committed outbox messages, in seq order, and the
// acknowledgements of the deliveries the commit recorded.
func (a *instanceActor) sendOutbox(ctx actor.Context, sent []outgoing, acks []*delivery) {
	if len(sent) > 0 && a.outbox == nil {
		a.outbox = map[uint64]*history.Event{}
	}
	for _, o := range sent {
		a.outbox[o.seq] = o.msg
		_ = a.node.send(o.msg.InstanceID, &delivery{target: o.msg.InstanceID, from: a.id, seq: o.seq, msg: o.msg})
	}
	for _, d := range acks {
		_ = a.node.send(d.from, &delivered{id: d.from, seq: d.seq})
	}
	a.resender.arm(ctx, a.node, len(a.outbox))
}

// flushOutbox commits outbox bookkeeping on its own when no turn carries it.
func (a *instanceActor) flushOutbox(ctx actor.Context) {
	if a.committing || (len(a.ackedOutbox) == 0 && len(a.extraOutbox) == 0 && len(a.pendingAcks) == 0) {
		return
	}
	b := &persistence.Batch{}
	sent := a.outboxOps(b)
	acks := a.pendingAcks
	a.pendingAcks = nil
	a.commit(ctx, b, nil, recordUnchanged, func(err error) {
		if err == nil {
			a.sendOutbox(ctx, sent, acks)
		}
	})
}

// handleDelivery takes a message from an entity's outbox: the response to
// a call or a lock, or the start of an orchestration.
func (a *instanceActor) handleDelivery(ctx actor.Context, d *delivery) {
	msg := d.msg
	switch msg.Type {
	case history.ExecutionStarted:
		reply := make(chanReply, 1)
		a.handleRequest(ctx, &startInstance{reply: reply, req: startRequest{
			InstanceID: a.id, Name: msg.Name, Input: msg.Payload,
			ParentInstanceID: d.from, ParentTaskID: int64(d.seq),
		}})
		node, log := a.node, a.logger()
		go func() {
			if err := (<-reply).GetError().Err(); err != nil {
				log.Warn("orchestration started by an entity was not started", "entity", d.from, "err", err)
			}
			_ = node.send(d.from, &delivered{id: d.from, seq: d.seq})
		}()
	case history.EntityOperationCompleted, history.EntityOperationFailed, history.EntityLockGranted:
		ev := &history.Event{Type: msg.Type, TaskID: msg.TaskID, Payload: msg.Payload, Failure: msg.Failure, Timestamp: unixTime(a.now())}
		live := a.exec != nil && !a.exec.Done() && a.exec.ExecutionID() == msg.ExecutionID
		if live && a.exec.IsOpen(ev.TaskID) && !a.queued(ev) {
			a.queueCompletion(ev)
			a.pendingAcks = append(a.pendingAcks, d)
			a.maybeTurn(ctx)
			return
		}
		if msg.Type == history.EntityLockGranted && !live {
			// A lock granted to an execution that has ended: release it,
			// durably, before acknowledging the grant.
			a.extraOutbox = append(a.extraOutbox, a.unlockMessages(msg.Payload)...)
			a.pendingAcks = append(a.pendingAcks, d)
			a.maybeTurn(ctx)
			return
		}
		_ = a.node.send(d.from, &delivered{id: d.from, seq: d.seq})
	default:
		replyTo(d.reply, fmt.Errorf("instance %s cannot take %s", a.id, msg.Type))
	}
}

// outboxResendAfter is how long a node of a cluster waits for the
// acknowledgement of an outbox message before it sends the message again:
// between nodes a message can be lost (its partition was moving); in one
// process it never is.
const outboxResendAfter = 5 * time.Second

// resendTick: time to send again what the outbox holds unacknowledged.
type resendTick struct{}

// outboxResender sends an actor's unacknowledged outbox messages again
// after outboxResendAfter, as long as there are any (cluster mode only).
// Receivers drop what they have applied, so a resend has one effect.
type outboxResender struct{ timer *time.Timer }

// arm schedules a resend if the outbox holds messages and none is
// scheduled.
func (r *outboxResender) arm(ctx actor.Context, n *Node, pending int) {
	if n.cfg.Remote == nil || pending == 0 || r.timer != nil {
		return
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	r.timer = time.AfterFunc(outboxResendAfter, func() { root.Send(self, &resendTick{}) })
}

// resend sends the pending messages again, in seq order, and re-arms.
func (r *outboxResender) resend(ctx actor.Context, n *Node, sender string, pending map[uint64]*history.Event) {
	r.timer = nil
	seqs := make([]uint64, 0, len(pending))
	for seq := range pending {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		ev := pending[seq]
		_ = n.send(ev.InstanceID, &delivery{target: ev.InstanceID, from: sender, seq: seq, msg: ev})
	}
	r.arm(ctx, n, len(pending))
}

func (r *outboxResender) stop() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}
