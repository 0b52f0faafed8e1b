package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
	"github.com/durable-go/durable/seam"
)

// This file is the node's side of the partition seam (package seam): how a
// *seam.Request is served by the partition that owns its target.
//
// Writes become messages to the instance or entity actor (through the
// partition actor, which routes and activates), answered once their commit
// is durable. Reads are served from the partition's store and its record of
// recently finished instances, waits by a subscription at the partition.
//
// The same code serves two kinds of callers. Node.Call is the in-process
// shortcut: reads run on the caller's goroutine (they take nothing the
// actors hold, and a mailbox hop would serialize them behind the
// partition's routing), writes carry a channel reply. A *seam.Request sent
// to a partition actor's PID (another process, or PIDPartitions) is answered
// by message to its sender, with the same code behind it.

// errShuttingDown answers requests made while the node stops.
var errShuttingDown = fmt.Errorf("node is shutting down: %w", seam.ErrUnavailable)

// Count implements seam.Partitions: the hub's partition count.
func (n *Node) Count() int { return n.cfg.Hub.Partitions() }

// Call implements seam.Partitions for the partitions of this node.
func (n *Node) Call(ctx context.Context, req *seam.Request) (*seam.Response, error) {
	p, err := seam.PartitionOf(req, n.Count())
	if err != nil {
		return nil, err
	}
	resp, err := n.serve(ctx, p, req)
	if err != nil {
		return nil, err
	}
	// An error answer may carry partial results (a purge's count).
	return resp, resp.GetError().Err()
}

// serve answers req at partition p. An error is the caller's (its context
// ended) or the node's (shutting down); the partition's own answers, errors
// included, are in the response.
func (n *Node) serve(ctx context.Context, p int, req *seam.Request) (*seam.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h := n.hostedPartition(p)
	if h == nil {
		return seam.Failed(n.notHere(p)), nil
	}
	switch op := req.GetOp().(type) {
	case *seam.Request_GetInstance:
		return n.markCodeMissing(getInstance(h, op.GetInstance.GetInstanceId())), nil
	case *seam.Request_GetHistory:
		return getHistory(h, op.GetHistory), nil
	case *seam.Request_ListInstances:
		return n.markCodeMissing(listInstances(h, op.ListInstances)), nil
	case *seam.Request_GetEntity:
		return getEntity(h, op.GetEntity.GetEntityId()), nil
	case *seam.Request_ListEntities:
		return listEntities(h, op.ListEntities), nil
	case *seam.Request_PurgeInstances:
		return n.purgeInstances(ctx, p, h, op.PurgeInstances)
	case *seam.Request_WaitForInstance:
		return waitForInstance(ctx, h, op.WaitForInstance)
	case *seam.Request_Ping:
		return seam.Failed(nil), nil
	}
	reply := make(chanReply, 1)
	msg, err := writeMessage(req, reply, n.keepKeys)
	if err != nil {
		return seam.Failed(err), nil
	}
	return n.request(ctx, p, msg, reply)
}

// writeMessage turns a write request into the message its actor serves.
// With keepKey the actor records the request's idempotency key, so that a
// retry of it has no second effect; without, the key is dropped: a request
// that can never be retried (the in-process path of a single node, where
// nothing below the Client sends a request twice) does not pay for
// recording it.
func writeMessage(req *seam.Request, reply replier, keepKey bool) (routed, error) {
	key := req.GetIdempotencyKey()
	if !keepKey {
		key = ""
	}
	switch op := req.GetOp().(type) {
	case *seam.Request_StartInstance:
		s := op.StartInstance
		if s.GetInstanceId() == "" || s.GetName() == "" {
			return nil, fmt.Errorf("%w: start needs an instance id and an orchestrator name", seam.ErrInvalidInput)
		}
		return &startInstance{req: startRequest{InstanceID: s.GetInstanceId(), Name: s.GetName(), Input: nilIfEmpty(s.GetInput()),
			Version: s.GetVersion(), PickVersion: s.Version != nil, TraceParent: s.GetTraceParent()}, key: key, reply: reply,
			fresh: s.GetFreshId() && !keepKey}, nil
	case *seam.Request_RaiseEvent:
		r := op.RaiseEvent
		if r.GetInstanceId() == "" || r.GetName() == "" {
			return nil, fmt.Errorf("%w: raise event needs an instance id and an event name", seam.ErrInvalidInput)
		}
		return &raiseEvent{id: r.GetInstanceId(), name: r.GetName(), payload: nilIfEmpty(r.GetPayload()), key: key, reply: reply}, nil
	case *seam.Request_ControlInstance:
		c := op.ControlInstance
		if c.GetInstanceId() == "" || c.GetOp() == seam.ControlOp_CONTROL_OP_UNSPECIFIED {
			return nil, fmt.Errorf("%w: control needs an instance id and an operation", seam.ErrInvalidInput)
		}
		return &control{id: c.GetInstanceId(), op: c.GetOp(), reason: c.GetReason(), key: key, reply: reply}, nil
	case *seam.Request_SignalEntity:
		s := op.SignalEntity
		target := s.GetEntityId()
		if _, err := orchestration.ParseEntityID(target); err != nil || !isEntityID(target) {
			return nil, fmt.Errorf("%w: entity id %q", seam.ErrInvalidInput, target)
		}
		ev := &history.Event{Type: history.EntityOperationSignaled, InstanceID: target, Name: s.GetOperation(), Payload: nilIfEmpty(s.GetInput())}
		if s.GetDelete() {
			ev.Name, ev.Payload, ev.Reason = "delete", nil, clientDeleteReason
		}
		return &delivery{target: target, key: key, reply: reply, msg: ev}, nil
	}
	return nil, fmt.Errorf("%w: not a write request", seam.ErrInvalidInput)
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// request sends a write to its actor through partition p and waits for the
// answer, the end of ctx, or the node's shutdown.
func (n *Node) request(ctx context.Context, p int, msg routed, reply chanReply) (*seam.Response, error) {
	if err := n.sendTo(p, msg); err != nil {
		return nil, err
	}
	select {
	case resp := <-reply:
		return resp, nil
	case <-n.stopped:
		// The actor may still answer if its commit was in flight.
		select {
		case resp := <-reply:
			return resp, nil
		case <-time.After(time.Second):
			return nil, fmt.Errorf("request to %s: %w", msg.instanceID(), errShuttingDown)
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("request to %s: %w", msg.instanceID(), ctx.Err())
	}
}

// storeError maps an error of the store to the seam's.
func storeError(what string, err error) error {
	if errors.Is(err, persistence.ErrClosed) || errors.Is(err, persistence.ErrFenced) {
		return fmt.Errorf("%s: %w: %w", what, seam.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func getInstance(h *hosted, id string) *seam.Response {
	if rec := h.waiters.finishedRecord(id); rec != nil {
		return &seam.Response{Instance: statusOf(rec)}
	}
	rec, err := h.store.LoadInstance(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return seam.Failed(fmt.Errorf("instance %s: %w", id, seam.ErrInstanceNotFound))
	}
	if err != nil {
		return seam.Failed(storeError("load instance "+id, err))
	}
	return &seam.Response{Instance: statusOf(rec)}
}

func getHistory(h *hosted, op *seam.GetHistory) *seam.Response {
	id := op.GetInstanceId()
	store := h.store
	rec, err := store.LoadInstance(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return seam.Failed(fmt.Errorf("instance %s: %w", id, seam.ErrInstanceNotFound))
	}
	if err != nil {
		return seam.Failed(storeError("load instance "+id, err))
	}
	first := rec.Generation
	if op.GetAllExecutions() {
		first = max(1, rec.HistoryFloor) // those below were dropped
	}
	resp := &seam.Response{}
	for gen := first; gen <= rec.Generation; gen++ {
		part, err := store.LoadHistory(id, gen)
		if err != nil {
			return seam.Failed(storeError("load history of "+id, err))
		}
		resp.HistoryEvents = append(resp.HistoryEvents, part...)
	}
	return resp
}

func instanceFilter(f *seam.InstanceFilter) persistence.ListFilter {
	lf := persistence.ListFilter{IDPrefix: f.GetInstanceIdPrefix()}
	if t := f.GetCreatedFromUnixNano(); t != 0 {
		lf.CreatedFrom = time.Unix(0, t)
	}
	if t := f.GetCreatedToUnixNano(); t != 0 {
		lf.CreatedTo = time.Unix(0, t)
	}
	for _, s := range f.GetStatuses() {
		lf.Statuses = append(lf.Statuses, persistence.Status(s))
	}
	return lf
}

// listLimit bounds one partition's page.
const listLimit = 10_000

func listInstances(h *hosted, op *seam.ListInstances) *seam.Response {
	limit := int(op.GetLimit())
	if limit <= 0 || limit > listLimit {
		return seam.Failed(fmt.Errorf("%w: list limit %d not in 1..%d", seam.ErrInvalidInput, limit, listLimit))
	}
	var after *persistence.ListCursor
	if c := op.GetAfter(); c != nil {
		after = &persistence.ListCursor{CreatedNanos: uint64(c.GetCreatedUnixNano()), ID: c.GetInstanceId()}
	}
	recs, err := h.store.ListInstances(instanceFilter(op.GetFilter()), after, limit)
	if err != nil {
		return seam.Failed(storeError(fmt.Sprintf("list instances of partition %d", h.store.Index()), err))
	}
	resp := &seam.Response{Instances: make([]*seam.InstanceStatus, len(recs))}
	for i, rec := range recs {
		resp.Instances[i] = statusOf(rec)
	}
	return resp
}

func getEntity(h *hosted, id string) *seam.Response {
	data, err := h.store.LoadEntity(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return seam.Failed(fmt.Errorf("%s: %w", id, seam.ErrEntityNotFound))
	}
	if err != nil {
		return seam.Failed(storeError("load entity "+id, err))
	}
	rec, err := DecodeEntityRecord(data)
	if err != nil {
		return seam.Failed(fmt.Errorf("entity %s: %w", id, err))
	}
	return &seam.Response{Entity: entityStateOf(id, rec, true)}
}

func entityStateOf(id string, rec *EntityRecord, withState bool) *seam.EntityState {
	st := &seam.EntityState{EntityId: id, HasState: rec.HasState}
	if !rec.LastOp.IsZero() {
		st.LastOperationUnixNano = rec.LastOp.UnixNano()
	}
	if withState {
		st.State = rec.State
	}
	return st
}

func listEntities(h *hosted, op *seam.ListEntities) *seam.Response {
	limit := int(op.GetLimit())
	if limit <= 0 || limit > listLimit {
		return seam.Failed(fmt.Errorf("%w: list limit %d not in 1..%d", seam.ErrInvalidInput, limit, listLimit))
	}
	prefix := "@"
	if op.GetName() != "" {
		prefix = "@" + strings.ToLower(op.GetName()) + "@"
	}
	var from, to time.Time
	if t := op.GetLastOperationFromUnixNano(); t != 0 {
		from = time.Unix(0, t)
	}
	if t := op.GetLastOperationToUnixNano(); t != 0 {
		to = time.Unix(0, t)
	}
	store := h.store
	resp := &seam.Response{}
	cursor := op.GetAfter()
	// Records without state (kept for de-duplication) are skipped, so read
	// on until limit matches or the partition is exhausted.
	for len(resp.Entities) < limit {
		entries, err := store.ListEntities(prefix, cursor, limit)
		if err != nil {
			return seam.Failed(storeError(fmt.Sprintf("list entities of partition %d", store.Index()), err))
		}
		for _, e := range entries {
			rec, err := DecodeEntityRecord(e.Data)
			if err != nil {
				return seam.Failed(fmt.Errorf("entity %s: %w", e.ID, err))
			}
			if !rec.HasState || (!from.IsZero() && rec.LastOp.Before(from)) || (!to.IsZero() && rec.LastOp.After(to)) {
				continue
			}
			if len(resp.Entities) < limit {
				resp.Entities = append(resp.Entities, entityStateOf(e.ID, rec, op.GetFetchState()))
			}
		}
		if len(entries) < limit {
			break
		}
		cursor = entries[len(entries)-1].ID
	}
	return resp
}

// purgePage is how many instances a purge by filter lists at a time.
const purgePage = 1000

// purgeInstances purges, one by one through their actors, the finished
// instances of partition p that match the filter.
func (n *Node) purgeInstances(ctx context.Context, p int, h *hosted, op *seam.PurgeInstances) (*seam.Response, error) {
	f := instanceFilter(op.GetFilter())
	if len(f.Statuses) == 0 {
		return seam.Failed(fmt.Errorf("%w: a purge by filter names the statuses to purge", seam.ErrInvalidInput)), nil
	}
	for _, s := range f.Statuses {
		if !s.IsTerminal() {
			return seam.Failed(fmt.Errorf("%w: cannot purge instances in status %s", seam.ErrInvalidInput, s)), nil
		}
	}
	store := h.store
	resp := &seam.Response{}
	var after *persistence.ListCursor
	for {
		recs, err := store.ListInstances(f, after, purgePage)
		if err != nil {
			resp.Error = seam.ErrorOf(storeError(fmt.Sprintf("list instances of partition %d", p), err))
			return resp, nil
		}
		for _, rec := range recs {
			reply := make(chanReply, 1)
			answer, err := n.request(ctx, p, &control{id: rec.ID, op: seam.ControlOp_CONTROL_OP_PURGE, reply: reply}, reply)
			if err != nil {
				return nil, err
			}
			switch err := answer.GetError().Err(); {
			case err == nil:
				resp.Purged++
			case errors.Is(err, seam.ErrInstanceNotFound), errors.Is(err, seam.ErrInstanceNotCompleted):
				// Purged or restarted meanwhile.
			default:
				resp.Error = answer.GetError()
				return resp, nil
			}
		}
		if len(recs) < purgePage {
			return resp, nil
		}
		c := persistence.CursorOf(recs[len(recs)-1])
		after = &c
	}
}

// waitForInstance answers with the instance's final status once it has
// ended: at once if it has, else through a subscription at the partition,
// fed by the instance actor's final commit.
func waitForInstance(ctx context.Context, h *hosted, op *seam.WaitForInstance) (*seam.Response, error) {
	id := op.GetInstanceId()
	w := h.waiters
	// Subscribe before reading, so an end committed in between is not
	// missed; an instance known to be running needs no read.
	rec, ch, running := w.subscribe(id)
	if rec != nil {
		return &seam.Response{Instance: statusOf(rec)}, nil // no subscription to add and remove
	}
	if !running {
		resp := getInstance(h, id)
		if resp.Error != nil || isTerminal(resp.GetInstance().GetRuntimeStatus()) {
			w.remove(id, ch)
			return resp, nil
		}
	}
	var expired <-chan time.Time
	if ms := op.GetTimeoutMillis(); ms > 0 {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		expired = t.C
	}
	select {
	case rec, ok := <-ch:
		if !ok {
			return seam.Failed(fmt.Errorf("wait for instance %s: %w", id, errShuttingDown)), nil
		}
		return &seam.Response{Instance: statusOf(rec)}, nil
	case <-expired:
		w.remove(id, ch)
		return seam.Failed(fmt.Errorf("wait for instance %s: %w", id, seam.ErrWaitExpired)), nil
	case <-ctx.Done():
		w.remove(id, ch)
		return nil, fmt.Errorf("wait for instance %s: %w", id, ctx.Err())
	}
}

func isTerminal(s seam.RuntimeStatus) bool { return persistence.Status(s).IsTerminal() }

// statusOf is the seam's view of a committed record.
func statusOf(rec *persistence.InstanceRecord) *seam.InstanceStatus {
	st := &seam.InstanceStatus{
		InstanceId:       rec.ID,
		Name:             rec.Name,
		Version:          rec.Version,
		RuntimeStatus:    seam.RuntimeStatus(rec.Status),
		Input:            rec.Input,
		Output:           rec.Output,
		CustomStatus:     rec.CustomStatus,
		Failure:          failureOf(rec.Failure),
		ExecutionId:      rec.ExecutionID,
		ParentInstanceId: rec.ParentInstanceID,
	}
	if !rec.CreatedAt.IsZero() {
		st.CreatedUnixNano = rec.CreatedAt.UnixNano()
	}
	if !rec.LastUpdatedAt.IsZero() {
		st.LastUpdatedUnixNano = rec.LastUpdatedAt.UnixNano()
	}
	return st
}

func failureOf(f *persistence.Failure) *seam.FailureDetails {
	if f == nil {
		return nil
	}
	return &seam.FailureDetails{ErrorType: f.ErrorType, Message: f.Message, StackTrace: f.StackTrace, Inner: failureOf(f.Inner)}
}

// storedFailure is the record's form of a failure of the engine, with its
// chain of inner failures.
func storedFailure(f *history.Failure) *persistence.Failure {
	if f == nil {
		return nil
	}
	return &persistence.Failure{ErrorType: f.ErrorType, Message: f.Message, StackTrace: f.StackTrace, Inner: storedFailure(f.Inner)}
}

// historyFailure is the engine's form of a stored failure.
func historyFailure(f *persistence.Failure) *history.Failure {
	if f == nil {
		return nil
	}
	return &history.Failure{ErrorType: f.ErrorType, Message: f.Message, StackTrace: f.StackTrace, Inner: historyFailure(f.Inner)}
}

// defaultRemoteWait bounds a wait subscription made by message without a
// timeout: the caller subscribes again if it still wants to wait, so a
// caller that went away leaves nothing behind for longer than this.
const defaultRemoteWait = time.Minute

// serveRemote serves a *seam.Request that came to partition actor p as a
// message, answering its sender.
func (p *partitionActor) serveRemote(ctx actor.Context, req *seam.Request) {
	sender := ctx.Sender()
	if sender == nil {
		p.node.log.Warn("dropping a seam request without a sender", "partition", p.index)
		return
	}
	reply := pidReply{root: ctx.ActorSystem().Root, pid: sender}
	if want, err := seam.PartitionOf(req, p.node.Count()); err != nil || want != p.index {
		if err == nil {
			err = fmt.Errorf("partition %d got a request for partition %d: %w", p.index, want, seam.ErrWrongPartition)
		}
		reply.answer(seam.Failed(err))
		return
	}
	switch op := req.GetOp().(type) {
	case *seam.Request_Ping:
		reply.answer(seam.Failed(nil)) // it is started and claimed: it serves
		return
	case *seam.Request_StartInstance, *seam.Request_RaiseEvent, *seam.Request_ControlInstance, *seam.Request_SignalEntity:
		msg, err := writeMessage(req, reply, true) // a caller by message may send it again
		if err != nil {
			reply.answer(seam.Failed(err))
			return
		}
		p.route(ctx, msg)
		return
	case *seam.Request_WaitForInstance:
		if op.WaitForInstance.GetTimeoutMillis() <= 0 {
			op.WaitForInstance.TimeoutMillis = defaultRemoteWait.Milliseconds()
		}
	}
	// Reads, waits and purges block on the store or on other actors: off
	// the partition's goroutine.
	n, index := p.node, p.index
	go func() {
		resp, err := n.serve(context.Background(), index, req)
		if err != nil {
			resp = seam.Failed(err)
		}
		reply.answer(resp)
	}()
}
