package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/internal/ids"
	"github.com/durable-go/durable/persistence"
	"github.com/durable-go/durable/seam"
)

// instanceActor is the persistent actor of one orchestration instance and
// the only writer of its records.
type instanceActor struct {
	node      *Node
	partition *actor.PID // the partition actor that routes to this one
	store     *persistence.Partition
	id        string
	log       *slog.Logger // made on first use: most actors never log
	fresh     bool         // spawned by a start of a fresh id (startInstance.fresh)

	rec  *persistence.InstanceRecord // as last committed; nil if none
	exec engine                      // nil unless the instance runs
	// traceParent is the trace context of the execution (from its
	// ExecutionStarted event), which its spans and children join.
	traceParent string
	// remote is the turn a remote worker holds (remote.go), nil if none;
	// remoteDone its answer when it came during another commit.
	remote     *remoteTurn
	remoteDone *remoteTurnDone
	// broken is set when the instance cannot be loaded (corrupt history,
	// orchestrator not registered): it stays on disk as it is, untouched.
	broken error
	// waitingVersion: broken because this node lacks the instance's
	// orchestrator version; counted in Node.WaitingForVersion.
	waitingVersion bool

	// Events waiting for the next turn, the inbox keys they came from, and
	// the callers to answer once they are committed.
	incoming    []*history.Event
	queuedTasks map[queuedKey]bool // the completions in incoming
	inboxSeqs   []uint64
	replies     []replier
	// incomingKeys are the idempotency keys of the client requests in
	// incoming, and turnKeys those of the turn being committed: the commit
	// writes them into the record, so a retried request is recognized.
	incomingKeys []string
	turnKeys     []string
	lastNow      int64

	inflightCommit
	afterCommit func(err error)
	deferred    []any // requests that arrived during a commit, handled after it

	toDispatch []*history.Event
	// openPending counts the execution's open activities and
	// sub-orchestrations as of the last commit. While it is above zero the
	// pending-work index holds the instance's one entry (FlagPendingWork),
	// or, for a record an earlier build wrote, one entry per open task:
	// legacyPending, deleted by the next commit (indexPendingWork).
	openPending   int
	legacyPending []uint64
	storeRetry    storeBackoff // holds dispatch back after failed store writes
	running       map[int64]*actor.PID
	attempts      map[int64]int
	waitingSlot   bool
	slotWaiter    *gateWaiter // while waitingSlot: withdrawn if the actor stops
	// activityCtx is canceled when the instance is terminated.
	activityCtx    context.Context
	cancelActivity context.CancelFunc

	// The durable outbox of messages to entities: sent and not yet
	// acknowledged, acknowledged and not yet deleted, and to be written with
	// the next commit. pendingAcks are deliveries to acknowledge once the
	// commit that records them is durable.
	outbox      map[uint64]*history.Event
	ackedOutbox []uint64
	// finished: the last commit ended the instance, so it passivates as
	// soon as it is idle instead of after the idle timeout (a client that
	// asks about it later reloads it).
	finished    bool
	idle        idleTracker
	extraOutbox []*history.Event
	pendingAcks []*delivery
	resender    outboxResender
	gc          historyCollector
}

func newInstanceActor(n *Node, partition *actor.PID, store *persistence.Partition, id string) *instanceActor {
	a := &instanceActor{
		node:      n,
		partition: partition,
		store:     store,
		id:        id,
	}
	return a
}

func (a *instanceActor) Receive(ctx actor.Context) {
	a.idle.observe(ctx, a.node.cfg.IdleTimeout)
	a.node.observeActor(ctx, KindInstance)
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		// Loading synchronously here means no other message is handled
		// before the history has been replayed. An actor spawned for a
		// fresh id has nothing to load.
		if !a.fresh {
			a.load(ctx)
		}
	case *wake:
	case *startInstance, *raiseEvent, *control:
		a.handleRequest(ctx, msg)
	case *timerFired:
		a.handleTimer(ctx, msg)
	case *subOrchestrationDone:
		if a.exec != nil && a.exec.ExecutionID() == msg.executionID {
			a.accept(ctx, msg.event)
		}
	case *delivery:
		a.handleDelivery(ctx, msg)
	case *delivered:
		if _, ok := a.outbox[msg.seq]; ok {
			delete(a.outbox, msg.seq)
			a.ackedOutbox = append(a.ackedOutbox, msg.seq)
			a.maybeTurn(ctx)
		}
	case *activityResult:
		if pid, ok := a.running[msg.event.TaskID]; ok && pid.Equal(msg.from) {
			delete(a.running, msg.event.TaskID)
		}
		if a.exec != nil && a.exec.ExecutionID() == msg.executionID {
			a.accept(ctx, msg.event)
		}
	case *historyCollected:
		a.handleHistoryCollected(ctx, msg)
		a.passivateIfFinished(ctx)
	case *commitResult:
		a.handleCommitResult(ctx, msg.err)
	case *remoteTurnDone:
		a.handleRemoteTurnDone(ctx, msg)
	case *slotsAvailable:
		a.waitingSlot, a.slotWaiter = false, nil
		a.dispatch(ctx)
	case *storeRetryDue:
		a.storeRetry.armed = false
		a.dispatch(ctx)
	case *idleCheck, *passivateNow:
		a.idle.handle(ctx, a.node, a.partition, a.id, a.isIdle())
	case *resendTick:
		a.resender.resend(ctx, a.node, a.id, a.outbox)
	case *actor.Stopped:
		ctx.Send(a.partition, &actorStopped{pid: ctx.Self()})
	case *actor.Stopping, *actor.Restarting:
		a.stopWaitingForVersion()
		a.idle.stop()
		a.resender.stop()
		a.release()
	}
}

func (a *instanceActor) logger() *slog.Logger {
	if a.log == nil {
		a.log = a.node.log.With("instanceId", a.id)
	}
	return a.log
}

// passivateIfFinished asks the partition to passivate a finished instance
// as soon as it is idle, rather than after the idle timeout.
func (a *instanceActor) passivateIfFinished(ctx actor.Context) {
	if a.finished && a.isIdle() {
		a.finished = false
		ctx.Send(a.partition, &passivateRequest{id: a.id, pid: ctx.Self()})
	}
}

func (a *instanceActor) isIdle() bool {
	return !a.committing && a.remote == nil && !a.gc.running && len(a.incoming) == 0 && len(a.running) == 0 && len(a.toDispatch) == 0 && len(a.deferred) == 0 &&
		len(a.outbox) == 0 && len(a.ackedOutbox) == 0 && len(a.extraOutbox) == 0 && len(a.pendingAcks) == 0
}

// release waits for an in-flight commit (so a successor actor never reads
// the store while this one still writes) and stops the orchestrator's
// goroutine.
func (a *instanceActor) release() {
	a.wait()
	if a.waitingSlot {
		a.node.gate.cancel(a.slotWaiter)
		a.waitingSlot, a.slotWaiter = false, nil
	}
	a.stopCollecting()
	a.withdrawRemoteTurn()
	if a.exec != nil {
		a.exec.Close()
		a.exec = nil
	}
	a.cancelActivities()
}

// activityContext is the context of the instance's activities, made on
// first use (most activations run none): canceled on termination.
func (a *instanceActor) activityContext() context.Context {
	if a.activityCtx == nil {
		a.activityCtx, a.cancelActivity = context.WithCancel(a.node.activityCtx)
	}
	return a.activityCtx
}

// cancelActivities cancels the running activities' context; the next
// activity gets a fresh one.
func (a *instanceActor) cancelActivities() {
	if a.cancelActivity != nil {
		a.cancelActivity()
		a.activityCtx, a.cancelActivity = nil, nil
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
// and the tasks that were scheduled but never completed.
func (a *instanceActor) load(ctx actor.Context) {
	rec, raw, err := a.store.LoadInstanceAndHistory(a.id)
	if errors.Is(err, persistence.ErrNotFound) {
		return
	}
	if err != nil {
		a.setBroken(fmt.Errorf("load instance %s: %w", a.id, err))
		return
	}
	a.rec = rec
	a.collectHistory(ctx)
	if rec.Flags&persistence.FlagUsesOutbox != 0 {
		if a.outbox == nil {
			a.outbox = map[uint64]*history.Event{}
		}
		resendOutbox(a.node, a.store, a.id, a.outbox, a.logger)
		a.resender.arm(ctx, a.node, len(a.outbox))
	}
	if rec.Status.IsTerminal() {
		return
	}
	fn, ok := a.node.orchestratorVersion(rec.Name, rec.Version)
	if !ok {
		if _, _, named := a.node.defaultOrchestrator(rec.Name); named {
			a.waitForVersion(rec)
			return
		}
		a.setBroken(fmt.Errorf("load instance %s: orchestrator %q: %w", a.id, rec.Name, seam.ErrOrchestratorNotRegistered))
		return
	}
	events, err := a.decodeHistory(raw)
	if err != nil {
		a.failCorrupt(ctx, err)
		return
	}
	var inbox []persistence.InboxMessage
	if rec.Flags&persistence.FlagUsesInbox != 0 {
		if inbox, err = a.store.LoadInbox(a.id); err != nil {
			a.setBroken(fmt.Errorf("load inbox of %s: %w", a.id, err))
			return
		}
	}
	a.exec = a.newExecution(rec.Name, rec.ExecutionID, fn)
	a.traceParent = traceParentOf(events)
	turn, err := a.exec.Replay(events)
	if err != nil {
		a.setBroken(fmt.Errorf("replay %s: %w", a.id, err))
		return
	}
	for _, m := range inbox {
		a.inboxSeqs = append(a.inboxSeqs, m.Seq)
		ev, err := history.Unmarshal(m.Data)
		if err != nil {
			a.logger().Error("dropping undecodable inbox message", "seq", m.Seq, "err", err)
			continue
		}
		a.incoming = append(a.incoming, ev)
	}
	a.countOpenPending(rec)
	if len(turn.Events) > 0 {
		// Replay itself ended the execution (non-determinism).
		_, seqs, replies := a.takeIncoming()
		a.commitTurn(ctx, turn, seqs, replies)
		return
	}
	a.redispatchOpenTasks()
	a.dispatch(ctx)
	a.maybeTurn(ctx)
}

func (a *instanceActor) loadHistory(gen uint32) ([]*history.Event, error) {
	raw, err := a.store.LoadHistory(a.id, gen)
	if err != nil {
		return nil, fmt.Errorf("load history of %s: %w", a.id, err)
	}
	return a.decodeHistory(raw)
}

func (a *instanceActor) decodeHistory(raw [][]byte) ([]*history.Event, error) {
	var err error
	events := make([]*history.Event, len(raw))
	for i, b := range raw {
		if events[i], err = history.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("load history of %s: event %d: %w", a.id, i, err)
		}
		if ts := events[i].Timestamp.UnixNano(); ts > a.lastNow {
			a.lastNow = ts
		}
	}
	return events, nil
}

// countOpenPending sets openPending from the replayed execution, and
// legacyPending to the entries a record without FlagPendingWork had: one
// per open task.
func (a *instanceActor) countOpenPending(rec *persistence.InstanceRecord) {
	a.openPending, a.legacyPending = 0, nil
	for _, ev := range a.exec.OpenTasks() {
		if ev.Type.Index() != history.PendingIndex {
			continue
		}
		a.openPending++
		if rec.Flags&persistence.FlagPendingWork == 0 {
			a.legacyPending = append(a.legacyPending, uint64(ev.TaskID))
		}
	}
}

// indexPendingWork adds to b what the pending-work index needs once the
// commit leaves open of the execution's activities and sub-orchestrations
// open (0 when the execution ends): the instance's entry is written when
// the first opens and deleted when the last closes, so a turn that closes
// one task and opens the next writes nothing there. Entries an earlier
// build wrote per task are deleted, and rec is marked as keeping one
// entry. Once the commit is durable, pendingWorkCommitted(open) records
// the outcome.
func (a *instanceActor) indexPendingWork(b *persistence.Batch, rec *persistence.InstanceRecord, open int) {
	had := a.openPending > 0 && a.rec != nil && a.rec.Flags&persistence.FlagPendingWork != 0
	for _, task := range a.legacyPending {
		b.DeletePendingActivity(a.id, task)
	}
	switch {
	case open > 0 && !had:
		b.PutPendingWork(a.id)
	case open <= 0 && had:
		b.DeletePendingWork(a.id)
	}
	rec.Flags |= persistence.FlagPendingWork
}

// pendingWorkCommitted records that a commit indexPendingWork wrote to is
// durable.
func (a *instanceActor) pendingWorkCommitted(open int) {
	a.openPending, a.legacyPending = open, nil
}

// redispatchOpenTasks queues the activities and sub-orchestrations that
// were scheduled and never completed (they may or may not have run before a
// crash: at least once). Starting a sub-orchestration again is idempotent.
func (a *instanceActor) redispatchOpenTasks() {
	for _, ev := range a.exec.OpenTasks() {
		if _, running := a.running[ev.TaskID]; running {
			continue
		}
		if ev.Type.Index() == history.PendingIndex {
			a.toDispatch = append(a.toDispatch, ev)
		}
	}
}

func (a *instanceActor) setBroken(err error) {
	a.broken = err
	a.logger().Error("instance left as it is on disk", "err", err)
}

// handleRequest serves start, raise-event and control requests; during a
// commit they wait, so each sees the state the commit leaves.
func (a *instanceActor) handleRequest(ctx actor.Context, msg any) {
	_, raise := msg.(*raiseEvent)
	if a.committing || (a.remote != nil && !raise) { // a raise goes to a remote instance's inbox at once
		if c, ok := msg.(*control); ok && c.op == seam.ControlOp_CONTROL_OP_TERMINATE {
			a.withdrawRemoteTurn() // a terminate does not wait for a worker
		}
		a.deferred = append(a.deferred, msg)
		return
	}
	switch m := msg.(type) {
	case *startInstance:
		if a.applied(m.key) {
			replyTo(m.reply, nil)
			return
		}
		a.handleStart(ctx, m)
	case *raiseEvent:
		if a.applied(m.key) {
			replyTo(m.reply, nil)
			return
		}
		if err := a.checkLive(); err != nil {
			replyTo(m.reply, fmt.Errorf("raise event %q to %s: %w", m.name, a.id, err))
			return
		}
		if _, remote := a.exec.(*remoteExecution); remote {
			a.raiseToInbox(ctx, m)
			return
		}
		a.incoming = append(a.incoming, &history.Event{Type: history.EventRaised, Name: m.name, Payload: m.payload})
		a.replies = append(a.replies, m.reply)
		a.addIncomingKey(m.key)
		a.maybeTurn(ctx)
	case *control:
		if a.applied(m.key) {
			replyTo(m.reply, nil)
			return
		}
		a.handleControl(ctx, m)
	}
}

// applied reports whether the client request with idempotency key key has
// had its effect already: a retry, answered with success and no effect.
// Requests are handled only between commits, so one still in incoming is
// not yet committed; none is both.
func (a *instanceActor) applied(key string) bool {
	return key != "" && a.rec != nil && slices.Contains(a.rec.RequestKeys, key)
}

func (a *instanceActor) addIncomingKey(key string) {
	if key != "" {
		a.incomingKeys = append(a.incomingKeys, key)
	}
}

// rememberKeys returns the record's request keys with keys added.
func rememberKeys(have []string, keys ...string) []string {
	for _, k := range keys {
		have = persistence.RememberRequestKey(have, k)
	}
	return have
}

// checkLive says why the instance cannot take events, or nil.
func (a *instanceActor) checkLive() error {
	switch {
	case a.broken != nil:
		return a.broken
	case a.rec == nil:
		return seam.ErrInstanceNotFound
	case a.rec.Status.IsTerminal():
		return fmt.Errorf("%w (status %s)", seam.ErrInstanceCompleted, a.rec.Status)
	case a.exec == nil:
		return fmt.Errorf("instance %s is not loaded", a.id)
	}
	return nil
}

func (a *instanceActor) handleStart(ctx actor.Context, msg *startInstance) {
	req := msg.req
	fail := func(err error) {
		if msg.reply != nil {
			replyTo(msg.reply, err)
			return
		}
		if err = retryableStoreError(err); seam.CodeOf(err) == seam.ErrorCode_ERROR_CODE_UNAVAILABLE {
			// A parent's sub-orchestration whose start could not be
			// written now (the store failed or is full, or the partition
			// moved to another node): the parent's history holds the
			// scheduling, so the child must start. Send the start again
			// after a pause, through the node, which routes it to the
			// partition's owner of then.
			pause := storeRetryPause(msg.retries)
			a.logger().Warn("start of a sub-orchestration failed: trying again", "parent", req.ParentInstanceID, "retry_in", pause, "err", err)
			again := &startInstance{req: req, retries: msg.retries + 1}
			node := a.node
			time.AfterFunc(pause, func() { _ = node.send(req.InstanceID, again) })
			return
		}
		// A parent's sub-orchestration: the failure is the task's outcome.
		a.notifyParentOf(req.ParentInstanceID, req.ParentExecutionID, req.ParentTaskID,
			&history.Failure{ErrorType: seam.CodeOf(err).String(), Message: err.Error()}, nil)
	}
	if a.broken != nil {
		fail(a.broken)
		return
	}
	if a.rec != nil && req.ParentInstanceID != "" && a.rec.ParentInstanceID == req.ParentInstanceID &&
		a.rec.ParentExecutionID == req.ParentExecutionID && a.rec.ParentTaskID == req.ParentTaskID {
		// The parent asks again (after a restart): this child exists.
		if a.rec.Status.IsTerminal() {
			a.notifyParent(a.rec)
		}
		replyTo(msg.reply, nil)
		return
	}
	if a.rec != nil && !a.rec.Status.IsTerminal() {
		fail(fmt.Errorf("start instance %s: %w (status %s)", a.id, seam.ErrInstanceExists, a.rec.Status))
		return
	}
	version, fn, err := a.node.startVersion(&req)
	if err != nil {
		fail(fmt.Errorf("start instance %s: %w", a.id, err))
		return
	}
	now := a.now()
	gen := uint32(1)
	b := &persistence.Batch{}
	if a.rec != nil {
		// Reusing the id of a finished instance replaces it.
		gen = a.rec.Generation + 1
		b.DeletePendingActivities(a.id)
	}
	rec := &persistence.InstanceRecord{
		ID:                a.id,
		Name:              req.Name,
		Version:           version,
		ExecutionID:       ids.NewString(),
		Generation:        gen,
		Status:            persistence.StatusPending,
		Input:             req.Input,
		CreatedAt:         unixTime(now),
		LastUpdatedAt:     unixTime(now),
		ParentInstanceID:  req.ParentInstanceID,
		ParentExecutionID: req.ParentExecutionID,
		ParentTaskID:      req.ParentTaskID,
		RequestKeys:       rememberKeys(nil, msg.key),
		Flags:             persistence.FlagPendingWork,
	}
	if a.rec != nil {
		dropHistoryBelow(rec, gen) // the replaced instance's
	}
	started := &history.Event{
		Type:              history.ExecutionStarted,
		Timestamp:         unixTime(now),
		Name:              req.Name,
		Version:           version,
		Payload:           req.Input,
		InstanceID:        a.id,
		ExecutionID:       rec.ExecutionID,
		ParentInstanceID:  req.ParentInstanceID,
		ParentExecutionID: req.ParentExecutionID,
		ParentTaskID:      req.ParentTaskID,
		TraceParent:       req.TraceParent,
	}
	a.traceParent = req.TraceParent
	// The first turn runs before the start is acknowledged and commits with
	// the record: one transaction instead of two, and the first activities
	// leave at once.
	if a.exec != nil {
		a.exec.Close()
	}
	a.exec = a.newExecution(req.Name, rec.ExecutionID, fn)
	if _, remote := a.exec.(*remoteExecution); remote {
		a.startRemote(ctx, msg, rec, b, started, fail)
		return
	}
	turn, err := a.exec.Apply([]*history.Event{{Type: history.OrchestratorStarted, Timestamp: unixTime(now)}, started})
	if err != nil {
		a.exec.Close()
		a.exec = nil
		fail(fmt.Errorf("start instance %s: %w", a.id, err))
		return
	}
	var replies []replier
	if msg.reply != nil {
		replies = append(replies, msg.reply)
	}
	a.commitTurnOver(ctx, turn, nil, replies, &startBase{prev: a.rec, base: rec, batch: b, onFail: func(err error) {
		if msg.reply == nil {
			fail(err)
		}
	}})
}

// accept queues a completion for the next turn, unless its task is not
// open: at-least-once delivery, effectively-once effect on the history.
func (a *instanceActor) accept(ctx actor.Context, ev *history.Event) {
	if a.exec == nil || a.exec.Done() || !a.exec.IsOpen(ev.TaskID) || a.queued(ev) {
		return
	}
	a.queueCompletion(ev)
	a.maybeTurn(ctx)
}

func (a *instanceActor) queued(ev *history.Event) bool {
	return a.queuedTasks[queuedKey{ev.Type, ev.TaskID}]
}

// queueCompletion adds a task's completion to the next turn; queuedTasks
// lets queued answer in O(1) when a wide fan-out's results pile up during
// a commit.
func (a *instanceActor) queueCompletion(ev *history.Event) {
	if a.queuedTasks == nil {
		a.queuedTasks = map[queuedKey]bool{}
	}
	a.queuedTasks[queuedKey{ev.Type, ev.TaskID}] = true
	a.incoming = append(a.incoming, ev)
}

// queuedKey names a completion waiting in incoming.
type queuedKey struct {
	typ    history.Type
	taskID int64
}

func (a *instanceActor) handleTimer(ctx actor.Context, msg *timerFired) {
	ref := timerRef{id: a.id, task: msg.taskID, due: msg.due.UnixNano()}
	if a.exec != nil && !a.exec.Done() && a.exec.IsOpen(int64(msg.taskID)) {
		ev := &history.Event{Type: history.TimerFired, TaskID: int64(msg.taskID), FireAt: msg.due}
		if !a.queued(ev) {
			a.node.observeTimer(msg.due)
			a.queueCompletion(ev)
			a.maybeTurn(ctx)
		}
		return
	}
	if a.committing || a.broken != nil {
		// Committing: the scheduler sends it again later if it is still
		// there. Broken: the instance stays on disk as it is, timers
		// included, for when it can be loaded again.
		return
	}
	// A timer nobody waits for any more (the instance ended or moved on):
	// drop its index entry.
	b := &persistence.Batch{}
	b.DeleteTimer(a.id, msg.taskID, msg.due)
	a.commit(ctx, b, nil, recordUnchanged, func(err error) {
		if err == nil {
			a.tellPartition(ctx, &timerDeleted{ref: ref})
		}
	})
}

func (a *instanceActor) tellPartition(ctx actor.Context, msg any) {
	ctx.Send(a.partition, msg)
}

// takeIncoming takes the events for the next turn, the inbox entries they
// came from and the callers to answer; the requests' idempotency keys move
// to turnKeys, for the turn's commit to record.
func (a *instanceActor) takeIncoming() ([]*history.Event, []uint64, []replier) {
	ev, seqs, replies := a.incoming, a.inboxSeqs, a.replies
	a.incoming, a.inboxSeqs, a.replies = nil, nil, nil
	a.turnKeys, a.incomingKeys = a.incomingKeys, nil
	clear(a.queuedTasks)
	return ev, seqs, replies
}

// maybeTurn runs the orchestrator on the events that arrived since the last
// turn, unless a commit is in flight: then they wait, and the next turn takes
// them all at once.
func (a *instanceActor) maybeTurn(ctx actor.Context) {
	if a.committing || a.remote != nil {
		return
	}
	if r, ok := a.exec.(*remoteExecution); ok && !r.Done() && a.startRemoteTurn(ctx, r) {
		return
	}
	if a.exec == nil || a.exec.Done() || len(a.incoming) == 0 {
		a.flushOutbox(ctx)
		return
	}
	incoming, seqs, replies := a.takeIncoming()
	events := make([]*history.Event, 0, len(incoming)+1)
	events = append(events, &history.Event{Type: history.OrchestratorStarted, Timestamp: unixTime(a.now())})
	events = append(events, incoming...)
	turn, err := a.exec.Apply(events)
	if err != nil {
		a.logger().Error("orchestration turn rejected", "err", err)
		for _, r := range replies {
			replyTo(r, err)
		}
		return
	}
	a.commitTurn(ctx, turn, seqs, replies)
}
