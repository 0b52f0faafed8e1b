package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// ErrOrchestratorNotRegistered is returned when starting an instance of an
// orchestrator name the node does not know.
var ErrOrchestratorNotRegistered = errors.New("orchestrator is not registered")

// activityResult carries an activity's outcome to its instance.
type activityResult struct{ event *history.Event }

// commitResult tells an instance actor that its in-flight commit returned.
type commitResult struct{ err error }

// slotsAvailable tells an instance actor that activity slots have freed.
type slotsAvailable struct{}

// instanceActor is the persistent actor of one orchestration instance and
// the only writer of its records.
type instanceActor struct {
	node  *Node
	store *persistence.Partition
	id    string
	log   *slog.Logger

	rec  *persistence.InstanceRecord // as last committed; nil if none
	exec *orchestration.Execution    // nil unless the instance runs
	// broken is set when the instance cannot be loaded (corrupt history,
	// orchestrator not registered): it stays on disk as it is, untouched.
	broken error

	// Events waiting for the next turn, and the inbox keys they came from.
	incoming  []*history.Event
	inboxSeqs []uint64
	lastNow   int64

	committing  bool
	commitDone  chan struct{}
	afterCommit func(err error)
	deferred    []*startInstance // starts that arrived during a commit

	toDispatch  []*history.Event
	running     map[int64]*actor.PID
	attempts    map[int64]int
	waitingSlot bool
}

func newInstanceActor(n *Node, store *persistence.Partition, id string) *instanceActor {
	return &instanceActor{
		node:     n,
		store:    store,
		id:       id,
		log:      n.log.With("instanceId", id),
		running:  map[int64]*actor.PID{},
		attempts: map[int64]int{},
	}
}

func (a *instanceActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		ctx.SetReceiveTimeout(a.node.cfg.IdleTimeout)
		// Loading synchronously here means no other message is handled
		// before the history has been replayed.
		a.load(ctx)
	case *wake:
	case *startInstance:
		a.handleStart(ctx, msg)
	case *activityResult:
		a.handleResult(ctx, msg)
	case *commitResult:
		a.handleCommitResult(ctx, msg.err)
	case *slotsAvailable:
		a.waitingSlot = false
		a.dispatch(ctx)
	case *actor.ReceiveTimeout:
		if a.idle() {
			ctx.Send(ctx.Parent(), &passivateRequest{id: a.id})
		}
	case *passivateNow:
		if a.idle() {
			ctx.Stop(ctx.Self())
		} else {
			ctx.Send(ctx.Parent(), &stayActive{id: a.id})
		}
	case *actor.Stopping, *actor.Restarting:
		a.release()
	}
}

func (a *instanceActor) idle() bool {
	return !a.committing && len(a.incoming) == 0 && len(a.running) == 0 && len(a.toDispatch) == 0 && len(a.deferred) == 0
}

// release waits for an in-flight commit (so a successor actor never reads
// the store while this one still writes) and stops the orchestrator's
// goroutine.
func (a *instanceActor) release() {
	if a.committing {
		<-a.commitDone
		a.committing = false
	}
	if a.exec != nil {
		a.exec.Close()
		a.exec = nil
	}
}

func (a *instanceActor) now() int64 {
	t := a.node.cfg.Now().UnixNano()
	if t <= a.lastNow {
		t = a.lastNow + 1
	}
	a.lastNow = t
	return t
}

// load rebuilds the instance from the store: record, history replay, inbox,
// and the activities that were scheduled but never completed.
func (a *instanceActor) load(ctx actor.Context) {
	rec, err := a.store.LoadInstance(a.id)
	if errors.Is(err, persistence.ErrNotFound) {
		return
	}
	if err != nil {
		a.setBroken(fmt.Errorf("load instance %s: %w", a.id, err))
		return
	}
	a.rec = rec
	if rec.Status.IsTerminal() {
		return
	}
	fn, ok := a.node.cfg.Registry.Orchestrator(rec.Name)
	if !ok {
		a.setBroken(fmt.Errorf("load instance %s: orchestrator %q: %w", a.id, rec.Name, ErrOrchestratorNotRegistered))
		return
	}
	raw, err := a.store.LoadHistory(a.id, rec.Generation)
	if err != nil {
		a.setBroken(fmt.Errorf("load history of %s: %w", a.id, err))
		return
	}
	events := make([]*history.Event, len(raw))
	for i, b := range raw {
		if events[i], err = history.Unmarshal(b); err != nil {
			a.setBroken(fmt.Errorf("load history of %s: event %d: %w", a.id, i, err))
			return
		}
		if ts := events[i].Timestamp.UnixNano(); ts > a.lastNow {
			a.lastNow = ts
		}
	}
	inbox, err := a.store.LoadInbox(a.id)
	if err != nil {
		a.setBroken(fmt.Errorf("load inbox of %s: %w", a.id, err))
		return
	}
	a.exec = orchestration.NewExecution(a.id, rec.ExecutionID, fn, a.node.log)
	turn, err := a.exec.Replay(events)
	if err != nil {
		a.setBroken(fmt.Errorf("replay %s: %w", a.id, err))
		return
	}
	for _, m := range inbox {
		a.inboxSeqs = append(a.inboxSeqs, m.Seq)
		ev, err := history.Unmarshal(m.Data)
		if err != nil {
			a.log.Error("dropping undecodable inbox message", "seq", m.Seq, "err", err)
			continue
		}
		a.incoming = append(a.incoming, ev)
	}
	if len(turn.Events) > 0 {
		// Replay itself ended the execution (non-determinism); the inbox
		// is of no use to it any more.
		seqs := a.inboxSeqs
		a.incoming, a.inboxSeqs = nil, nil
		a.commitTurn(ctx, turn, seqs)
		return
	}
	for _, ev := range a.exec.OpenActivities() {
		if _, running := a.running[ev.TaskID]; !running {
			a.toDispatch = append(a.toDispatch, ev)
		}
	}
	a.dispatch(ctx)
	a.maybeTurn(ctx)
}

func (a *instanceActor) setBroken(err error) {
	a.broken = err
	a.log.Error("instance left as it is on disk", "err", err)
}

func (a *instanceActor) handleStart(ctx actor.Context, msg *startInstance) {
	if a.committing {
		a.deferred = append(a.deferred, msg)
		return
	}
	if a.broken != nil {
		msg.reply <- a.broken
		return
	}
	if a.rec != nil && !a.rec.Status.IsTerminal() {
		msg.reply <- fmt.Errorf("start instance %s: %w (status %s)", a.id, ErrInstanceExists, a.rec.Status)
		return
	}
	req := msg.req
	fn, ok := a.node.cfg.Registry.Orchestrator(req.Name)
	if !ok {
		msg.reply <- fmt.Errorf("start instance %s: orchestrator %q: %w", a.id, req.Name, ErrOrchestratorNotRegistered)
		return
	}
	now := a.now()
	gen := uint32(1)
	b := &persistence.Batch{}
	if a.rec != nil {
		// Reusing the id of a finished instance replaces it.
		gen = a.rec.Generation + 1
		b.DeleteHistory(a.id)
		b.DeletePendingActivities(a.id)
	}
	rec := &persistence.InstanceRecord{
		ID:            a.id,
		Name:          req.Name,
		ExecutionID:   uuid.NewString(),
		Generation:    gen,
		Status:        persistence.StatusPending,
		Input:         req.Input,
		CreatedAt:     unixTime(now),
		LastUpdatedAt: unixTime(now),
	}
	started := &history.Event{
		Type:        history.ExecutionStarted,
		Timestamp:   unixTime(now),
		Name:        req.Name,
		Payload:     req.Input,
		InstanceID:  a.id,
		ExecutionID: rec.ExecutionID,
	}
	seq := a.store.NextInboxSeq()
	b.PutInbox(a.id, seq, history.Marshal(started))
	b.PutInstance(rec)
	a.commit(ctx, b, msg.reply, func(err error) {
		if err != nil {
			return
		}
		a.rec = rec
		a.node.cfg.OnStatus(rec)
		if a.exec != nil {
			a.exec.Close()
		}
		a.exec = orchestration.NewExecution(a.id, rec.ExecutionID, fn, a.node.log)
		a.incoming = append(a.incoming, started)
		a.inboxSeqs = append(a.inboxSeqs, seq)
	})
}

func (a *instanceActor) handleResult(ctx actor.Context, msg *activityResult) {
	id := msg.event.TaskID
	if pid, ok := a.running[id]; ok && ctx.Sender() != nil && pid.Equal(ctx.Sender()) {
		delete(a.running, id)
	}
	// A result for a task that is not open (already completed, or from an
	// execution that has ended) is dropped: at-least-once delivery,
	// effectively-once effect on the history.
	if a.exec == nil || a.exec.Done() || !a.exec.IsOpen(id) || a.queued(id) {
		return
	}
	a.incoming = append(a.incoming, msg.event)
	a.maybeTurn(ctx)
}

func (a *instanceActor) queued(taskID int64) bool {
	for _, ev := range a.incoming {
		if ev.TaskID == taskID && (ev.Type == history.TaskCompleted || ev.Type == history.TaskFailed) {
			return true
		}
	}
	return false
}

// maybeTurn runs the orchestrator on the events that arrived since the last
// turn, unless a commit is in flight: then they wait, and the next turn takes
// them all at once.
func (a *instanceActor) maybeTurn(ctx actor.Context) {
	if a.committing || a.exec == nil || a.exec.Done() || len(a.incoming) == 0 {
		return
	}
	events := make([]*history.Event, 0, len(a.incoming)+1)
	events = append(events, &history.Event{Type: history.OrchestratorStarted, Timestamp: unixTime(a.now())})
	events = append(events, a.incoming...)
	seqs := a.inboxSeqs
	a.incoming, a.inboxSeqs = nil, nil
	turn, err := a.exec.Apply(events)
	if err != nil {
		a.log.Error("orchestration turn rejected", "err", err)
		return
	}
	a.commitTurn(ctx, turn, seqs)
}

// commitTurn writes a turn's events, the instance record and the recovery
// indexes in one batch, and dispatches the turn's actions only once that
// batch has committed: a crash in between must not lose the schedule.
func (a *instanceActor) commitTurn(ctx actor.Context, turn *orchestration.Turn, consumedInbox []uint64) {
	rec := *a.rec
	b := &persistence.Batch{}
	encoded := make([][]byte, len(turn.Events))
	for i, ev := range turn.Events {
		encoded[i] = history.Marshal(ev)
	}
	b.AppendHistory(a.id, rec.Generation, rec.HistoryLen, encoded)
	rec.HistoryLen += uint32(len(encoded))
	for _, ev := range turn.Actions {
		if ev.Type == history.TaskScheduled && !turn.Done {
			b.PutPendingActivity(a.id, uint64(ev.TaskID))
		}
	}
	for _, ev := range turn.Events {
		if ev.Type == history.TaskCompleted || ev.Type == history.TaskFailed {
			b.DeletePendingActivity(a.id, uint64(ev.TaskID))
		}
	}
	for _, seq := range consumedInbox {
		b.DeleteInbox(a.id, seq)
	}
	rec.Status = persistence.StatusRunning
	if turn.Done {
		b.DeletePendingActivities(a.id)
		rec.Output = turn.Output
		rec.Status = persistence.StatusCompleted
		if turn.Failure != nil {
			rec.Status = persistence.StatusFailed
			rec.Output = nil
			rec.Failure = &persistence.Failure{ErrorType: turn.Failure.ErrorType, Message: turn.Failure.Message, StackTrace: turn.Failure.StackTrace}
		}
	}
	if turn.CustomStatusChanged {
		rec.CustomStatus = turn.CustomStatus
	}
	if n := len(turn.Events); n > 0 {
		rec.LastUpdatedAt = turn.Events[n-1].Timestamp
	}
	b.PutInstance(&rec)
	statusChanged := rec.Status != a.rec.Status
	a.commit(ctx, b, nil, func(err error) {
		if err != nil {
			return
		}
		a.rec = &rec
		if statusChanged {
			a.node.cfg.OnStatus(&rec)
		}
		if turn.Done {
			a.exec.Close()
			a.exec = nil
			a.toDispatch = nil
			return
		}
		for _, ev := range turn.Actions {
			if ev.Type == history.TaskScheduled {
				a.toDispatch = append(a.toDispatch, ev)
			}
		}
	})
}

// commit hands the batch to the partition's group committer on a goroutine
// and comes back to the actor as a commitResult message. reply, if set, gets
// the outcome straight from that goroutine, so a caller is answered even if
// the actor stops meanwhile.
func (a *instanceActor) commit(ctx actor.Context, b *persistence.Batch, reply chan error, then func(err error)) {
	a.committing = true
	a.afterCommit = then
	done := make(chan struct{})
	a.commitDone = done
	self, root, store, id := ctx.Self(), ctx.ActorSystem().Root, a.store, a.id
	go func() {
		err := store.Commit(context.Background(), b)
		if err != nil {
			err = fmt.Errorf("commit instance %s: %w", id, err)
		}
		if reply != nil {
			reply <- err
		}
		close(done)
		root.Send(self, &commitResult{err: err})
	}()
}

func (a *instanceActor) handleCommitResult(ctx actor.Context, err error) {
	if !a.committing {
		return
	}
	a.committing = false
	then := a.afterCommit
	a.afterCommit = nil
	then(err)
	if err != nil {
		a.commitFailed(ctx, err)
	}
	deferred := a.deferred
	a.deferred = nil
	for _, m := range deferred {
		a.handleStart(ctx, m)
	}
	a.dispatch(ctx)
	a.maybeTurn(ctx)
}

// commitFailed: the in-memory execution ran ahead of the store. Throw it
// away and reload from the store; results that were in the lost turn are
// recovered by re-running their activities (their pending index survived).
func (a *instanceActor) commitFailed(ctx actor.Context, err error) {
	a.log.Error("commit failed; reloading instance from the store", "err", err)
	if errors.Is(err, persistence.ErrClosed) {
		return
	}
	if a.exec != nil {
		a.exec.Close()
		a.exec = nil
	}
	a.rec, a.incoming, a.inboxSeqs, a.toDispatch = nil, nil, nil, nil
	a.load(ctx)
}

// dispatch starts queued activities while the node has free slots, and
// otherwise registers to be woken when one frees.
func (a *instanceActor) dispatch(ctx actor.Context) {
	for len(a.toDispatch) > 0 {
		if a.node.activityCtx.Err() != nil {
			return
		}
		if !a.node.gate.tryAcquire() {
			if !a.waitingSlot {
				a.waitingSlot = true
				self, root := ctx.Self(), ctx.ActorSystem().Root
				a.node.gate.wait(func() { root.Send(self, &slotsAvailable{}) })
			}
			return
		}
		ev := a.toDispatch[0]
		a.toDispatch[0] = nil
		a.toDispatch = a.toDispatch[1:]
		a.attempts[ev.TaskID]++
		act := &activityActor{node: a.node, instanceID: a.id, scheduled: ev, attempt: a.attempts[ev.TaskID]}
		pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return act },
			actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective }))))
		a.running[ev.TaskID] = pid
	}
	a.node.gate.passOn()
}
