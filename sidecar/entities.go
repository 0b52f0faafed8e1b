package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// Entities: the client RPCs, over the Client's entity calls, and the
// entity work items of entities written in another language.
//
// An entity whose name no Go function is registered for
// (Runtime.RegisterEntity) is served by the workers: its actor keeps the
// state, the inbox, the locks and the de-duplication as for a Go entity,
// and hands a worker a batch of operations with the state (an
// EntityBatchRequest work item, leased like the others, see worker.go).
// The worker's CompleteEntityTask (a result per operation, the new state,
// the signals and orchestration starts the operations sent) is committed
// as a Go batch is: in one transaction with the inbox entries it consumed,
// the callers' responses and the outbox messages. A failed operation's
// changes are rolled back by the worker, which reports its failure; a call
// gets it as the failure of its task. While a batch is out, later
// operations wait in the entity's durable inbox, in order; a node restart
// runs the batch again from the inbox.
//
// Remote orchestrations call and signal entities and lock them in critical
// sections (sendEntityMessage): durable keeps a call's request id and a
// lock request's critical section id in the history event and gives it
// back with the response or the grant, by which the worker's code finds
// them; the locks an execution still holds when it ends are released.
//
// Not served: the V2 EntityRequest work item (the batch request is what
// the SDKs handle), a batch answered for only some of its operations
// (refused), orchestration starts from an entity scheduled for later or of
// a given version (refused), and the backlog size and lock holder in the
// entity metadata.

// entityID parses the protocol's "@name@key".
func entityID(s string) (orchestration.EntityID, error) {
	id, err := orchestration.ParseEntityID(s)
	if err != nil {
		return id, invalid("%v", err)
	}
	return id, nil
}

// SignalEntity sends an operation to an entity, one way; it answers once
// the signal is durable. A signal scheduled for later is refused.
func (s *Server) SignalEntity(ctx context.Context, req *pb.SignalEntityRequest) (*pb.SignalEntityResponse, error) {
	id, err := entityID(req.GetInstanceId())
	if err != nil {
		return nil, err
	}
	if req.GetName() == "" {
		return nil, invalid("SignalEntity: the operation name is required")
	}
	if at := req.GetScheduledTime(); at != nil && at.AsTime().After(time.Now().Add(time.Second)) {
		return nil, unsupported("a scheduled signal from a client", "signal it when it is due, or from an orchestration with a timer")
	}
	var input any
	if p := payload(req.GetInput()); p != nil {
		input = p
	}
	if err := s.client.SignalEntity(ctx, id, req.GetName(), input); err != nil {
		return nil, s.grpcError("SignalEntity", err)
	}
	return &pb.SignalEntityResponse{}, nil
}

// GetEntity answers exists=false for an entity without state. durable's
// client read gives the state, not the time of the last operation.
func (s *Server) GetEntity(ctx context.Context, req *pb.GetEntityRequest) (*pb.GetEntityResponse, error) {
	id, err := entityID(req.GetInstanceId())
	if err != nil {
		return nil, err
	}
	state, err := s.client.ReadEntityState(ctx, id)
	if errors.Is(err, durable.ErrEntityNotFound) {
		return &pb.GetEntityResponse{Exists: false}, nil
	}
	if err != nil {
		return nil, s.grpcError("GetEntity", err)
	}
	md := &pb.EntityMetadata{InstanceId: id.String()}
	if req.GetIncludeState() {
		md.SerializedState = str(state)
	}
	return &pb.GetEntityResponse{Exists: true, Entity: md}, nil
}

// QueryEntities lists entities with state, a page at a time. An id prefix
// that names a whole entity name ("@counter@…") reads that name's index;
// any other prefix filters every entity's id, so a page may be short.
func (s *Server) QueryEntities(ctx context.Context, req *pb.QueryEntitiesRequest) (*pb.QueryEntitiesResponse, error) {
	q := req.GetQuery()
	prefix := q.GetInstanceIdStartsWith().GetValue()
	if prefix != "" && !strings.HasPrefix(prefix, "@") {
		prefix = "@" + prefix
	}
	var name string
	if rest, ok := strings.CutPrefix(prefix, "@"); ok {
		if n, _, whole := strings.Cut(rest, "@"); whole {
			name = n
		}
	}
	size := 0
	if ps := q.GetPageSize(); ps != nil {
		if ps.GetValue() < 0 {
			return nil, invalid("QueryEntities: pageSize %d is negative", ps.GetValue())
		}
		size = int(ps.GetValue())
	}
	page, err := s.client.ListEntities(ctx, durable.EntityQuery{
		Name:              name,
		LastOperationFrom: timeOf(q.GetLastModifiedFrom()),
		LastOperationTo:   timeOf(q.GetLastModifiedTo()),
		FetchState:        q.GetIncludeState(),
		PageSize:          size,
		ContinuationToken: q.GetContinuationToken().GetValue(),
	})
	if err != nil {
		return nil, s.grpcError("QueryEntities", err)
	}
	out := &pb.QueryEntitiesResponse{ContinuationToken: optional(page.ContinuationToken)}
	for _, e := range page.Entities {
		if !strings.HasPrefix(e.ID.String(), strings.ToLower(prefix)) && !strings.HasPrefix(e.ID.String(), prefix) {
			continue
		}
		md := &pb.EntityMetadata{InstanceId: e.ID.String(), LastModifiedTime: ts(e.LastOperationTime)}
		if q.GetIncludeState() {
			md.SerializedState = str(e.State)
		}
		out.Entities = append(out.Entities, md)
	}
	return out, nil
}

// CleanEntityStorage has nothing to clean: durable keeps no entity without
// state, and releases an orchestration's locks when it ends.
func (s *Server) CleanEntityStorage(ctx context.Context, req *pb.CleanEntityStorageRequest) (*pb.CleanEntityStorageResponse, error) {
	return &pb.CleanEntityStorageResponse{}, nil
}

// runEntityBatch is the runtime's remote entity function: it queues the
// batch for the workers (an EntityBatchRequest work item) and calls done
// with the worker's answer.
func (d *dispatcher) runEntityBatch(ctx context.Context, batch durable.RemoteEntityBatch, done func(*durable.RemoteEntityResult, error)) {
	req := &pb.EntityBatchRequest{InstanceId: batch.EntityID}
	if batch.HasState {
		req.EntityState = wrapperspb.String(string(batch.State))
	}
	for _, op := range batch.Operations {
		req.Operations = append(req.Operations, &pb.OperationRequest{Operation: op.Name, RequestId: op.RequestID, Input: str(op.Input)})
	}
	it := &workItem{kind: entityWork, name: strings.ToLower(batch.Name), batch: &batch, item: func(token string) *pb.WorkItem {
		return &pb.WorkItem{Request: &pb.WorkItem_EntityRequest{EntityRequest: req}, CompletionToken: token}
	}}
	go func() {
		out, err := d.await(ctx, it)
		if err != nil {
			done(nil, fmt.Errorf("entity batch of %s withdrawn from the workers: %w", batch.EntityID, err))
			return
		}
		if out.err != nil {
			done(nil, out.err)
			return
		}
		done(out.entity, nil)
	}()
}

// knownEntity reports whether a worker serves entity name.
func (d *dispatcher) knownEntity(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.anyName || d.announcedEntities[strings.ToLower(name)]
}

// CompleteEntityTask takes a worker's answer for the entity batch its
// completion token leases: a result per operation, the new state and the
// actions (signals to entities, starts of orchestrations). The entity
// commits them with the batch's inbox deletions in one transaction. A
// failure of the whole batch (failureDetails) gives the operations back to
// the entity, which hands them out again after a pause. A malformed answer
// is refused and the lease stays.
func (s *Server) CompleteEntityTask(ctx context.Context, res *pb.EntityBatchResult) (*pb.CompleteTaskResponse, error) {
	err := s.work.complete(entityWork, res.GetCompletionToken(), func(it *workItem) (outcome, error) {
		if f := res.GetFailureDetails(); f != nil {
			return outcome{err: fmt.Errorf("the worker failed the batch of %s: %w", it.batch.EntityID, failureFromProto(f))}, nil
		}
		result, err := entityResultFromProto(it.batch, res)
		return outcome{entity: result}, err
	})
	if err != nil {
		return nil, err
	}
	return &pb.CompleteTaskResponse{}, nil
}

// entityResultFromProto reads a worker's answer against its batch.
func entityResultFromProto(batch *durable.RemoteEntityBatch, res *pb.EntityBatchResult) (*durable.RemoteEntityResult, error) {
	if len(res.GetResults()) != len(batch.Operations) {
		return nil, invalid("CompleteEntityTask: %d results for a batch of %d operations (a worker must answer every operation)", len(res.GetResults()), len(batch.Operations))
	}
	out := &durable.RemoteEntityResult{}
	for i, r := range res.GetResults() {
		switch {
		case r.GetSuccess() != nil:
			b, err := entityPayload(fmt.Sprintf("the result of operation %d", i), r.GetSuccess().GetResult())
			if err != nil {
				return nil, err
			}
			out.Results = append(out.Results, durable.RemoteOperationResult{Result: b})
		case r.GetFailure() != nil:
			f := failureFromProto(r.GetFailure().GetFailureDetails())
			if f == nil {
				f = &durable.FailureDetails{ErrorType: "EntityOperationFailed", Message: "the worker reported a failure without details"}
			}
			out.Results = append(out.Results, durable.RemoteOperationResult{Failure: f})
		default:
			return nil, invalid("CompleteEntityTask: result %d is neither a success nor a failure", i)
		}
	}
	if st := res.GetEntityState(); st != nil {
		b, err := entityPayload("the entity state", st)
		if err != nil {
			return nil, err
		}
		out.State, out.HasState = b, b != nil
	}
	for _, a := range res.GetActions() {
		switch {
		case a.GetSendSignal() != nil:
			sig := a.GetSendSignal()
			target, err := entityID(sig.GetInstanceId())
			if err != nil {
				return nil, invalid("CompleteEntityTask: action %d signals %q: %v", a.GetId(), sig.GetInstanceId(), err)
			}
			if sig.GetName() == "" {
				return nil, invalid("CompleteEntityTask: action %d signals %s without an operation name", a.GetId(), target)
			}
			input, err := entityPayload(fmt.Sprintf("the input of action %d", a.GetId()), sig.GetInput())
			if err != nil {
				return nil, err
			}
			out.Signals = append(out.Signals, orchestration.EntitySignal{Target: target, Operation: sig.GetName(), Input: input, At: timeOf(sig.GetScheduledTime())})
		case a.GetStartNewOrchestration() != nil:
			st := a.GetStartNewOrchestration()
			if st.GetName() == "" || st.GetInstanceId() == "" {
				return nil, invalid("CompleteEntityTask: action %d starts an orchestration without a name or an instance id", a.GetId())
			}
			if at := st.GetScheduledTime(); at != nil && at.AsTime().After(time.Now().Add(time.Second)) {
				return nil, invalid("CompleteEntityTask: action %d schedules the start of %q for later; durable starts orchestrations from entities at once only", a.GetId(), st.GetName())
			}
			if v := st.GetVersion().GetValue(); v != "" {
				return nil, invalid("CompleteEntityTask: action %d starts version %q of %q; an entity starts an orchestrator's default version only", a.GetId(), v, st.GetName())
			}
			input, err := entityPayload(fmt.Sprintf("the input of action %d", a.GetId()), st.GetInput())
			if err != nil {
				return nil, err
			}
			out.Starts = append(out.Starts, orchestration.OrchestrationStart{Name: st.GetName(), InstanceID: st.GetInstanceId(), Input: input})
		default:
			return nil, invalid("CompleteEntityTask: action %d is of no kind durable knows", a.GetId())
		}
	}
	return out, nil
}

// entityPayload is a JSON payload of a worker's entity answer: absent or
// empty is none.
func entityPayload(what string, v *wrapperspb.StringValue) ([]byte, error) {
	if v == nil || v.GetValue() == "" {
		return nil, nil
	}
	if !json.Valid([]byte(v.GetValue())) {
		return nil, invalid("CompleteEntityTask: %s is not valid JSON", what)
	}
	return []byte(v.GetValue()), nil
}

// AbandonTaskEntityWorkItem gives a leased entity batch back: it is
// dispatched again, to this worker or another.
func (s *Server) AbandonTaskEntityWorkItem(ctx context.Context, req *pb.AbandonEntityTaskRequest) (*pb.AbandonEntityTaskResponse, error) {
	if err := s.work.abandon(entityWork, req.GetCompletionToken()); err != nil {
		return nil, err
	}
	return &pb.AbandonEntityTaskResponse{}, nil
}
