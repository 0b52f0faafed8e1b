package sidecar

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// The entity client RPCs, over the Client's entity calls. Entities are
// written in Go (Runtime.RegisterEntity); entity work items for entities
// written in another language are not served (CompleteEntityTask answers
// Unimplemented).

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

// CompleteEntityTask is not served: entities are written in Go.
func (s *Server) CompleteEntityTask(context.Context, *pb.EntityBatchResult) (*pb.CompleteTaskResponse, error) {
	return nil, unsupported("entity work items", "entities run as Go code registered with Runtime.RegisterEntity; no entity work items are handed to workers")
}

// AbandonTaskEntityWorkItem is not served: there are no entity work items.
func (s *Server) AbandonTaskEntityWorkItem(context.Context, *pb.AbandonEntityTaskRequest) (*pb.AbandonEntityTaskResponse, error) {
	return nil, unsupported("entity work items", "entities run as Go code registered with Runtime.RegisterEntity")
}
