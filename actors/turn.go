package actors

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/internal/ids"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
	"github.com/durable-go/durable/seam"
)

// commitTurn writes a turn's events, the instance record and the recovery
// indexes (pending tasks, due timers, inbox) in one batch, and dispatches
// the turn's actions only once that batch has committed: a crash in between
// must not lose the schedule.
func (a *instanceActor) commitTurn(ctx actor.Context, turn *orchestration.Turn, consumedInbox []uint64, replies []replier) {
	a.commitTurnOver(ctx, turn, consumedInbox, replies, nil)
}

// startBase is the first turn's context: the record the new execution
// starts from, the committed record it replaces (nil if none), and the
// batch that already holds the start's other writes.
type startBase struct {
	prev, base *persistence.InstanceRecord
	batch      *persistence.Batch
	onFail     func(err error)
}

func (a *instanceActor) commitTurnOver(ctx actor.Context, turn *orchestration.Turn, consumedInbox []uint64, replies []replier, start *startBase) {
	prev := a.rec
	b := &persistence.Batch{}
	if start != nil {
		prev, b = start.prev, start.batch
		a.rec = start.base // the base of this turn; restored if the commit fails
	}
	a.limitTurn(turn)
	rec := *a.rec
	a.settleGarbageFlag(&rec)
	encoded := make([][]byte, len(turn.Events))
	for i, ev := range turn.Events {
		encoded[i] = history.Marshal(ev)
	}
	b.AppendHistory(a.id, rec.Generation, rec.HistoryLen, encoded)
	rec.HistoryLen += uint32(len(encoded))
	var fired []timerRef
	open := a.openPending // activities and sub-orchestrations open after the turn
	for _, ev := range turn.Events {
		switch ev.Type.Closes().Index() { // the index of the task a completion closes
		case history.PendingIndex:
			open--
		case history.TimerIndex:
			b.DeleteTimer(a.id, uint64(ev.TaskID), ev.FireAt)
			fired = append(fired, timerRef{id: a.id, task: uint64(ev.TaskID), due: ev.FireAt.UnixNano()})
		}
	}
	var earliestTimer time.Time
	if !turn.Done {
		for _, ev := range turn.Actions {
			switch ev.Type.Index() {
			case history.PendingIndex:
				open++
			case history.TimerIndex:
				b.PutTimer(a.id, uint64(ev.TaskID), ev.FireAt)
				if earliestTimer.IsZero() || ev.FireAt.Before(earliestTimer) {
					earliestTimer = ev.FireAt
				}
			}
		}
	}
	if turn.Done {
		open = 0 // nothing the execution waited for matters any more
	}
	a.indexPendingWork(b, &rec, open)
	for _, seq := range consumedInbox {
		b.DeleteInbox(a.id, seq)
	}
	for _, ev := range turn.Actions {
		a.extraOutbox = append(a.extraOutbox, a.entityMessages(ev, a.exec.ExecutionID())...)
	}
	sent, acks := a.outboxWithRecord(b, &rec)
	rec.Status = persistence.StatusRunning
	if turn.Suspended {
		rec.Status = persistence.StatusSuspended
	}
	if turn.CustomStatusChanged {
		rec.CustomStatus = turn.CustomStatus
	}
	if len(a.turnKeys) > 0 {
		rec.RequestKeys = rememberKeys(rec.RequestKeys, a.turnKeys...)
		a.turnKeys = nil
	}
	if n := len(turn.Events); n > 0 {
		rec.LastUpdatedAt = turn.Events[n-1].Timestamp
	}
	var next *continuation
	if turn.Done {
		// Nothing the execution waited for matters any more. (Explicit
		// deletes: a prefix delete would make Badger sort the whole group's
		// pending writes.)
		a.dropOpenTasks(b)
		switch {
		case turn.ContinuedAsNew:
			next = a.prepareContinueAsNew(b, &rec, turn)
		case turn.Failure != nil:
			rec.Status = persistence.StatusFailed
			rec.Output = nil
			rec.Failure = storedFailure(turn.Failure)
		default:
			rec.Status = persistence.StatusCompleted
			rec.Output = turn.Output
		}
	}
	b.PutInstanceOver(prev, &rec)
	a.commit(ctx, b, replies, recordWritten(&rec), func(err error) {
		if err != nil {
			if start != nil {
				a.rec = prev
				start.onFail(err)
			}
			return
		}
		a.rec = &rec
		a.pendingWorkCommitted(open)
		a.observeTurn(start != nil, prev, &rec, turn)
		a.sendOutbox(ctx, sent, acks)
		for _, ref := range fired {
			a.tellPartition(ctx, &timerDeleted{ref: ref})
		}
		if !earliestTimer.IsZero() {
			a.tellPartition(ctx, &timerScheduled{due: earliestTimer})
		}
		if turn.Done {
			a.exec.Close()
			a.exec = nil
			a.toDispatch = nil
			if next != nil {
				a.exec = next.exec
				a.incoming = append(next.events, a.incoming...)
				a.inboxSeqs = append(next.seqs, a.inboxSeqs...)
				return
			}
			a.notifyParent(&rec)
			a.finished = true // passivate once idle: nothing more will happen to it
			return
		}
		for _, ev := range turn.Actions {
			if ev.Type.Index() == history.PendingIndex {
				a.toDispatch = append(a.toDispatch, ev)
			}
		}
	})
}

// dropOpenTasks deletes the due-timer entries of the execution's open
// timers (the pending-work entry is indexPendingWork's). Entries of timers
// scheduled in the current turn were never written; deleting them is
// harmless.
func (a *instanceActor) dropOpenTasks(b *persistence.Batch) {
	if a.exec == nil {
		return
	}
	for _, ev := range a.exec.OpenTasks() {
		if ev.Type.Index() == history.TimerIndex {
			b.DeleteTimer(a.id, uint64(ev.TaskID), ev.FireAt)
		}
	}
}

// continuation is the next execution of an instance that continued as new.
type continuation struct {
	exec   engine
	events []*history.Event
	seqs   []uint64
}

// prepareContinueAsNew adds to b the start of the instance's next
// execution: a new generation with the new input and, in its inbox, the
// ExecutionStarted event and the external events carried over.
func (a *instanceActor) prepareContinueAsNew(b *persistence.Batch, rec *persistence.InstanceRecord, turn *orchestration.Turn) *continuation {
	version := rec.Version
	fn, ok := a.node.orchestratorVersion(rec.Name, version)
	if turn.DefaultVersion {
		version, fn, ok = a.node.defaultOrchestrator(rec.Name)
	}
	if !ok {
		rec.Status = persistence.StatusFailed
		rec.Failure = &persistence.Failure{ErrorType: "OrchestratorNotRegistered", Message: fmt.Sprintf("continue as new: orchestrator %q version %q is not registered", rec.Name, version)}
		return nil
	}
	rec.Version = version
	now := unixTime(a.now())
	rec.Generation++
	if !turn.KeepHistory {
		dropHistoryBelow(rec, rec.Generation)
	}
	rec.ExecutionID = ids.NewString()
	rec.HistoryLen = 0
	rec.Flags |= persistence.FlagUsesInbox
	rec.Input = turn.NewInput
	rec.Output = nil
	rec.Failure = nil
	rec.LastUpdatedAt = now
	started := &history.Event{
		Type: history.ExecutionStarted, Timestamp: now, Name: rec.Name, Version: rec.Version, Payload: turn.NewInput,
		InstanceID: a.id, ExecutionID: rec.ExecutionID,
		ParentInstanceID: rec.ParentInstanceID, ParentExecutionID: rec.ParentExecutionID, ParentTaskID: rec.ParentTaskID,
	}
	next := &continuation{exec: a.newExecution(rec.Name, rec.ExecutionID, fn)}
	for _, ev := range append([]*history.Event{started}, turn.CarryOver...) {
		seq := a.store.NextInboxSeq()
		b.PutInbox(a.id, seq, history.Marshal(ev))
		next.events = append(next.events, ev)
		next.seqs = append(next.seqs, seq)
	}
	return next
}

// notifyParent tells the parent of a finished sub-orchestration its outcome.
// If the message is lost (a crash), the parent asks again on recovery.
func (a *instanceActor) notifyParent(rec *persistence.InstanceRecord) {
	if rec.ParentInstanceID == "" || !rec.Status.IsTerminal() {
		return
	}
	switch rec.Status {
	case persistence.StatusCompleted:
		a.notifyParentOf(rec.ParentInstanceID, rec.ParentExecutionID, rec.ParentTaskID, nil, rec.Output)
	case persistence.StatusFailed:
		f := &history.Failure{Message: "sub-orchestration failed"}
		if rec.Failure != nil {
			f = historyFailure(rec.Failure)
		}
		a.notifyParentOf(rec.ParentInstanceID, rec.ParentExecutionID, rec.ParentTaskID, f, nil)
	default:
		a.notifyParentOf(rec.ParentInstanceID, rec.ParentExecutionID, rec.ParentTaskID,
			&history.Failure{ErrorType: rec.Status.String(), Message: fmt.Sprintf("sub-orchestration %s was %s: %s", a.id, rec.Status, rec.Output)}, nil)
	}
}

func (a *instanceActor) notifyParentOf(parent, parentExecution string, task int64, failure *history.Failure, output []byte) {
	if parent == "" || isEntityID(parent) {
		return // an entity that started an orchestration does not wait for it
	}
	now := a.node.cfg.Now().UTC()
	ev := &history.Event{Type: history.SubOrchestrationCompleted, Timestamp: now, TaskID: task, Payload: output}
	if failure != nil {
		ev = &history.Event{Type: history.SubOrchestrationFailed, Timestamp: now, TaskID: task, Failure: failure}
	}
	_ = a.node.send(parent, &subOrchestrationDone{id: parent, executionID: parentExecution, event: ev})
}

// handleControl serves terminate, suspend, resume, purge and rewind.
func (a *instanceActor) handleControl(ctx actor.Context, m *control) {
	switch m.op {
	case seam.ControlOp_CONTROL_OP_PURGE:
		switch {
		case a.rec == nil && a.broken == nil:
			replyTo(m.reply, fmt.Errorf("purge %s: %w", a.id, seam.ErrInstanceNotFound))
		case a.rec != nil && !a.rec.Status.IsTerminal():
			replyTo(m.reply, fmt.Errorf("purge %s: %w (status %s)", a.id, seam.ErrInstanceNotCompleted, a.rec.Status))
		default:
			if err := a.purgeHistory(); err != nil {
				replyTo(m.reply, fmt.Errorf("purge %s: %w", a.id, err))
				return
			}
			b := &persistence.Batch{}
			b.DeleteInstance(a.id)
			a.commit(ctx, b, []replier{m.reply}, recordDeleted, func(err error) {
				if err == nil {
					a.rec, a.broken = nil, nil
				}
			})
		}
	case seam.ControlOp_CONTROL_OP_TERMINATE:
		if a.rec == nil {
			replyTo(m.reply, fmt.Errorf("terminate %s: %w", a.id, seam.ErrInstanceNotFound))
			return
		}
		if a.rec.Status.IsTerminal() {
			replyTo(m.reply, fmt.Errorf("terminate %s: %w (status %s)", a.id, seam.ErrInstanceCompleted, a.rec.Status))
			return
		}
		a.terminate(ctx, m)
	case seam.ControlOp_CONTROL_OP_SUSPEND, seam.ControlOp_CONTROL_OP_RESUME:
		suspend := m.op == seam.ControlOp_CONTROL_OP_SUSPEND
		verb := map[bool]string{true: "suspend", false: "resume"}[suspend]
		if err := a.checkLive(); err != nil {
			replyTo(m.reply, fmt.Errorf("%s %s: %w", verb, a.id, err))
			return
		}
		suspended := a.rec.Status == persistence.StatusSuspended
		typ := history.ExecutionSuspended
		if !suspend {
			typ = history.ExecutionResumed
		}
		if suspended == suspend {
			replyTo(m.reply, nil) // already so
			return
		}
		a.incoming = append(a.incoming, &history.Event{Type: typ, Reason: m.reason})
		a.replies = append(a.replies, m.reply)
		a.addIncomingKey(m.key)
		a.maybeTurn(ctx)
	case seam.ControlOp_CONTROL_OP_REWIND:
		if err := a.rewind(ctx, m); err != nil {
			replyTo(m.reply, fmt.Errorf("rewind %s: %w", a.id, err))
		}
	default:
		replyTo(m.reply, fmt.Errorf("%w: unknown operation %s", seam.ErrInvalidInput, m.op))
	}
}

// terminate ends the instance from outside: its history records why, its
// pending work is dropped, and running activities see their context
// canceled (their results are discarded).
func (a *instanceActor) terminate(ctx actor.Context, m *control) {
	now := unixTime(a.now())
	rec := *a.rec
	b := &persistence.Batch{}
	events := []*history.Event{
		{Type: history.OrchestratorStarted, Timestamp: now},
		{Type: history.ExecutionTerminated, Timestamp: now, Reason: m.reason},
	}
	b.AppendHistory(a.id, rec.Generation, rec.HistoryLen, [][]byte{history.Marshal(events[0]), history.Marshal(events[1])})
	rec.HistoryLen += 2
	if a.exec != nil {
		a.dropOpenTasks(b)
		a.indexPendingWork(b, &rec, 0)
	} else {
		b.DeletePendingActivities(a.id)
	}
	for _, seq := range a.inboxSeqs {
		b.DeleteInbox(a.id, seq)
	}
	if a.exec != nil {
		// Release what the execution holds or is acquiring.
		if held := a.exec.HeldLocks(); len(held) > 0 {
			payload, _ := json.Marshal(held)
			a.extraOutbox = append(a.extraOutbox, a.unlockMessages(payload)...)
		}
		for _, ev := range a.exec.OpenTasks() {
			if ev.Type == history.EntityLockRequested {
				a.extraOutbox = append(a.extraOutbox, a.unlockMessages(ev.Payload)...)
			}
		}
	}
	sent, acks := a.outboxWithRecord(b, &rec)
	rec.Status = persistence.StatusTerminated
	rec.Output, _ = json.Marshal(m.reason)
	rec.LastUpdatedAt = now
	rec.RequestKeys = rememberKeys(rec.RequestKeys, m.key)
	b.PutInstanceOver(a.rec, &rec)
	a.commit(ctx, b, []replier{m.reply}, recordWritten(&rec), func(err error) {
		if err != nil {
			return
		}
		a.observeTurn(false, a.rec, &rec, nil)
		a.rec = &rec
		a.pendingWorkCommitted(0)
		a.endWaitForVersion()
		a.sendOutbox(ctx, sent, acks)
		a.cancelActivities()
		if a.exec != nil {
			a.exec.Close()
			a.exec = nil
		}
		a.toDispatch = nil
		_, _, dropped := a.takeIncoming()
		for _, r := range dropped {
			replyTo(r, fmt.Errorf("%w (status %s)", seam.ErrInstanceCompleted, rec.Status))
		}
		a.notifyParent(&rec)
		a.finished = true
	})
}

// rewind re-runs a failed instance from its first failed task: the history
// is cut just before that failure (keeping the outcomes of tasks opened
// before it that arrived later, except failures of activities and
// sub-orchestrations), so what succeeded is not repeated and what failed
// runs again.
func (a *instanceActor) rewind(ctx actor.Context, m *control) error {
	switch {
	case a.broken != nil:
		return a.broken
	case a.rec == nil:
		return seam.ErrInstanceNotFound
	case a.rec.Status != persistence.StatusFailed:
		return fmt.Errorf("%w (status %s)", seam.ErrNotFailed, a.rec.Status)
	}
	if f := a.rec.Failure; f != nil && f.ErrorType == ErrorTypeCorruptHistory {
		return fmt.Errorf("%w: its stored history cannot be decoded, so it cannot be rewound (purge it)", seam.ErrInvalidInput)
	}
	fn, ok := a.node.orchestratorVersion(a.rec.Name, a.rec.Version)
	if !ok {
		return fmt.Errorf("orchestrator %q version %q: %w", a.rec.Name, a.rec.Version, seam.ErrOrchestratorNotRegistered)
	}
	if r, ok := a.node.cfg.Registry.(RemoteOrchestrators); ok && r.ServedRemotely(a.rec.Name) {
		return fmt.Errorf("%w: orchestrator %q runs on remote workers, and rewinding them is not supported", seam.ErrInvalidInput, a.rec.Name)
	}
	events, err := a.loadHistory(a.rec.Generation)
	if err != nil {
		return err
	}
	// rerun: the failure of a task the instance dispatches itself (an
	// activity, a sub-orchestration), which a rewind can therefore run
	// again. An entity call cannot be: its request left through the outbox.
	rerun := func(t history.Type) bool { return t.IsFailure() && t.Closes().Index() == history.PendingIndex }
	cut := -1
	for i, ev := range events {
		if rerun(ev.Type) {
			cut = i
			break
		}
	}
	if cut < 0 {
		return a.rewindCode(ctx, m, fn, events)
	}
	opened := map[int64]history.Type{}
	for _, ev := range events[:cut] {
		if ev.Type.Opens() {
			opened[ev.TaskID] = ev.Type
		}
	}
	now := unixTime(a.now())
	kept := append([]*history.Event(nil), events[:cut]...)
	var tail []*history.Event
	for _, ev := range events[cut+1:] {
		switch {
		case ev.Type == history.EventRaised:
			tail = append(tail, ev)
		case ev.Type.IsCompletion() && opened[ev.TaskID] == ev.Type.Closes() && !rerun(ev.Type):
			// An outcome that arrived after the cut, of a task opened
			// before it. Failures of tasks rewind runs again are dropped;
			// every other outcome is kept, for nothing would deliver it a
			// second time: an entity's answer or a lock grant was
			// delivered once and acknowledged, and without it the task
			// would stay open for ever.
			tail = append(tail, ev)
		}
	}
	if len(tail) > 0 {
		kept = append(kept, &history.Event{Type: history.OrchestratorStarted, Timestamp: now})
		kept = append(kept, tail...)
	}
	exec := orchestration.NewExecution(a.id, a.rec.ExecutionID, fn, a.node.log)
	if turn, err := exec.Replay(kept); err != nil || turn.Done {
		exec.Close()
		if err == nil {
			err = fmt.Errorf("the rewound history does not replay: %v", turn.Failure)
		}
		return err
	}
	rec, b := a.rewoundRecord(kept, now, m.key, 0)
	var earliestTimer time.Time
	open := 0
	for _, ev := range exec.OpenTasks() {
		// Only the tasks that need an index get one: an entry for an entity
		// call or a lock request (history.NoIndex) would be deleted by
		// nothing, and recovery would wake the instance on every start.
		switch ev.Type.Index() {
		case history.TimerIndex:
			b.PutTimer(a.id, uint64(ev.TaskID), ev.FireAt)
			if earliestTimer.IsZero() || ev.FireAt.Before(earliestTimer) {
				earliestTimer = ev.FireAt
			}
		case history.PendingIndex:
			open++
		}
	}
	a.indexPendingWork(b, &rec, open)
	b.PutInstanceOver(a.rec, &rec)
	a.commit(ctx, b, []replier{m.reply}, recordWritten(&rec), func(err error) {
		if err != nil {
			exec.Close()
			return
		}
		a.rec = &rec
		a.pendingWorkCommitted(open)
		a.exec = exec
		a.redispatchOpenTasks()
		if !earliestTimer.IsZero() {
			a.tellPartition(ctx, &timerScheduled{due: earliestTimer})
		}
	})
	return nil
}

// rewindCode rewinds an instance whose orchestrator code itself failed (no
// activity or sub-orchestration failure to re-run): the failed turn is
// taken back and its inputs run again on the code registered now, which a
// fix may have changed. The history is cut at the start of that turn; the
// new generation replays the rest and receives the turn's inputs (the
// completions, events and start it had been handed) through the inbox,
// written in the same commit, so a crash before the turn runs loses none
// of them. If the current code no longer replays the history before the
// failed turn, nothing changes and the caller is told why.
func (a *instanceActor) rewindCode(ctx actor.Context, m *control, fn orchestration.Orchestrator, events []*history.Event) error {
	end := -1
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Type == history.ExecutionCompleted {
			end = i
			break
		}
	}
	if end < 0 {
		return fmt.Errorf("%w: the history of the failed execution records no failure to take back", seam.ErrInvalidInput)
	}
	turnStart := 0
	for i := end - 1; i >= 0; i-- {
		if events[i].Type == history.OrchestratorStarted {
			turnStart = i
			break
		}
	}
	kept := events[:turnStart]
	var inputs []*history.Event
	closed := map[int64]bool{} // tasks the taken-back turn completed
	for _, ev := range events[turnStart:end] {
		switch {
		case ev.Type.IsCompletion():
			closed[ev.TaskID] = true
			inputs = append(inputs, ev)
		case ev.Type == history.EventRaised, ev.Type == history.ExecutionStarted,
			ev.Type == history.ExecutionSuspended, ev.Type == history.ExecutionResumed:
			inputs = append(inputs, ev)
		}
	}
	exec := orchestration.NewExecution(a.id, a.rec.ExecutionID, fn, a.node.log)
	if turn, err := exec.Replay(kept); err != nil || turn.Done {
		exec.Close()
		if err == nil {
			err = fmt.Errorf("%w: the orchestrator code registered now does not replay the history before the failed turn: %v", seam.ErrInvalidInput, turn.Failure)
		}
		return err
	}
	now := unixTime(a.now())
	rec, b := a.rewoundRecord(kept, now, m.key, persistence.FlagUsesInbox)
	var earliestTimer time.Time
	var redispatch []*history.Event
	open := 0 // the tasks whose completion comes back through the inbox too: it closes them
	for _, ev := range exec.OpenTasks() {
		if ev.Type.Index() == history.PendingIndex {
			open++
		}
		if closed[ev.TaskID] {
			continue // its completion comes back through the inbox
		}
		switch ev.Type.Index() {
		case history.TimerIndex:
			b.PutTimer(a.id, uint64(ev.TaskID), ev.FireAt)
			if earliestTimer.IsZero() || ev.FireAt.Before(earliestTimer) {
				earliestTimer = ev.FireAt
			}
		case history.PendingIndex:
			redispatch = append(redispatch, ev)
		}
	}
	a.indexPendingWork(b, &rec, open)
	seqs := make([]uint64, len(inputs))
	for i, ev := range inputs {
		seqs[i] = a.store.NextInboxSeq()
		b.PutInbox(a.id, seqs[i], history.Marshal(ev))
	}
	b.PutInstanceOver(a.rec, &rec)
	a.commit(ctx, b, []replier{m.reply}, recordWritten(&rec), func(err error) {
		if err != nil {
			exec.Close()
			return
		}
		a.rec = &rec
		a.pendingWorkCommitted(open)
		a.exec = exec
		a.finished = false
		a.incoming = append(inputs, a.incoming...)
		a.inboxSeqs = append(seqs, a.inboxSeqs...)
		for _, ev := range redispatch {
			if _, running := a.running[ev.TaskID]; !running {
				a.toDispatch = append(a.toDispatch, ev)
			}
		}
		if !earliestTimer.IsZero() {
			a.tellPartition(ctx, &timerScheduled{due: earliestTimer})
		}
	})
	return nil
}

// recordChange says what a commit does to the instance's record, so that
// the partition's waiters hear of it before anyone is answered.
type recordChange struct {
	rec     *persistence.InstanceRecord // the record written, if any
	deleted bool                        // the record is deleted (purge)
}

var (
	recordUnchanged = recordChange{}
	recordDeleted   = recordChange{deleted: true}
)

func recordWritten(rec *persistence.InstanceRecord) recordChange { return recordChange{rec: rec} }

// commit writes b through the partition's group commit (the protocol of
// inflightCommit, path commitInlineOrQueued). Once it is durable, the
// partition's waiters hear of change and replies are answered, from the
// partition's notifier (or the actor's goroutine, inline); then then runs
// on the actor.
func (a *instanceActor) commit(ctx actor.Context, b *persistence.Batch, replies []replier, change recordChange, then func(err error)) {
	a.afterCommit = then
	began := a.node.commitBegan()
	id, w := a.id, a.node.hostedPartition(a.store.Index())
	durable := func(err error) {
		a.node.observeCommit(began, err)
		if err == nil && (change.rec != nil || change.deleted) && w != nil {
			w.waiters.onRecord(id, change.rec)
		}
		for _, r := range replies {
			replyTo(r, err)
		}
	}
	if err, inline := a.begin(ctx, a.store, b, "instance", id, durable, commitInlineOrQueued); inline {
		a.handleCommitResult(ctx, err)
	}
}

func (a *instanceActor) handleCommitResult(ctx actor.Context, err error) {
	if !a.end() {
		return
	}
	if err == nil {
		a.storeRetry.succeeded()
	}
	then := a.afterCommit
	a.afterCommit = nil
	then(err)
	if err != nil {
		a.commitFailed(ctx, err)
	}
	deferred := a.deferred
	a.deferred = nil
	for _, m := range deferred {
		a.handleRequest(ctx, m)
	}
	a.takeRemoteDone(ctx)
	a.dispatch(ctx)
	a.maybeTurn(ctx)
	if !a.committing {
		a.collectHistory(ctx)
		a.passivateIfFinished(ctx)
	}
}

// commitFailed: the in-memory execution ran ahead of the store. Throw it
// away and reload from the store; results that were in the lost turn are
// recovered by re-running their tasks (their pending index survived).
func (a *instanceActor) commitFailed(ctx actor.Context, err error) {
	a.logger().Error("commit failed; reloading instance from the store", "err", err)
	if errors.Is(err, persistence.ErrClosed) {
		return
	}
	if errors.Is(err, persistence.ErrWriteFailed) {
		// The disk refuses writes (full, failing): the tasks the reload
		// re-dispatches wait a growing while, so that activities are not
		// run again and again while nothing can be written.
		a.storeRetry.failed()
	}
	if a.exec != nil {
		a.exec.Close()
		a.exec = nil
	}
	_, _, replies := a.takeIncoming()
	for _, r := range replies {
		replyTo(r, err)
	}
	a.rec, a.toDispatch = nil, nil
	a.load(ctx)
}

// dispatch starts queued activities while the node has free slots, and
// otherwise registers to be woken when one frees. Sub-orchestrations are
// started by a message to the child, which needs no slot.
func (a *instanceActor) dispatch(ctx actor.Context) {
	if len(a.toDispatch) > 0 && a.storeRetry.hold(ctx) {
		return
	}
	for len(a.toDispatch) > 0 {
		if a.node.activityCtx.Err() != nil || a.exec == nil {
			return
		}
		ev := a.toDispatch[0]
		if ev.Type == history.SubOrchestrationCreated {
			a.toDispatch = a.toDispatch[1:]
			_ = a.node.send(ev.InstanceID, &startInstance{req: startRequest{
				InstanceID: ev.InstanceID, Name: ev.Name, Input: ev.Payload,
				ParentInstanceID: a.id, ParentExecutionID: a.exec.ExecutionID(), ParentTaskID: ev.TaskID, TraceParent: a.traceParent,
			}})
			continue
		}
		if !a.node.gate.tryAcquire() {
			if !a.waitingSlot {
				a.waitingSlot = true
				self, root := ctx.Self(), ctx.ActorSystem().Root
				a.slotWaiter = a.node.gate.wait(func() { root.Send(self, &slotsAvailable{}) })
			}
			return
		}
		a.toDispatch[0] = nil
		a.toDispatch = a.toDispatch[1:]
		if a.attempts == nil {
			a.attempts = map[int64]int{}
		}
		a.attempts[ev.TaskID]++
		attempt := int(ev.Attempt)
		if attempt == 0 {
			attempt = a.attempts[ev.TaskID]
		}
		act := &activityActor{node: a.node, instance: ctx.Self(), ctx: a.activityContext(), instanceID: a.id, executionID: a.exec.ExecutionID(), scheduled: ev, attempt: attempt, traceParent: a.traceParent}
		a.node.activities.Add(1)
		pid := ctx.ActorSystem().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return act },
			actor.WithGuardian(activityStrategy), actor.WithDispatcher(activityDispatcher{})))
		if a.running == nil {
			a.running = map[int64]*actor.PID{}
		}
		a.running[ev.TaskID] = pid
	}
	a.node.gate.passOn()
}

// rewoundRecord is the record of a rewind (a new generation, running again,
// its history the kept events, with flags added and the request's key
// remembered) and a batch that writes that history.
func (a *instanceActor) rewoundRecord(kept []*history.Event, now time.Time, key string, flags persistence.RecordFlags) (persistence.InstanceRecord, *persistence.Batch) {
	rec := *a.rec
	rec.Generation++
	rec.Status = persistence.StatusRunning
	rec.Failure = nil
	rec.Output = nil
	rec.LastUpdatedAt = now
	rec.HistoryLen = uint32(len(kept))
	rec.Flags |= flags
	rec.RequestKeys = rememberKeys(rec.RequestKeys, key)
	dropHistoryBelow(&rec, rec.Generation)
	b := &persistence.Batch{}
	encoded := make([][]byte, len(kept))
	for i, ev := range kept {
		encoded[i] = history.Marshal(ev)
	}
	b.AppendHistory(a.id, rec.Generation, 0, encoded)
	return rec, b
}
