package sidecar

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// The client RPCs: each is one or a few calls of the public durable.Client.

// StartInstance starts an orchestration. A version, tags and trace context
// are not kept (durable has no orchestration versions in this protocol); a
// scheduled start in the future is refused, since durable starts at once.
func (s *Server) StartInstance(ctx context.Context, req *pb.CreateInstanceRequest) (*pb.CreateInstanceResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("StartInstance: name is required")
	}
	if at := req.GetScheduledStartTimestamp(); at != nil && at.AsTime().After(time.Now().Add(time.Second)) {
		return nil, unsupported("a scheduled start time", "instances start when created; start it later, or wait on a durable timer first")
	}
	var opts []durable.StartOption
	if req.GetInstanceId() != "" {
		opts = append(opts, durable.WithInstanceID(req.GetInstanceId()))
	}
	var input any
	if p := payload(req.GetInput()); p != nil {
		input = p
	}
	id, err := s.client.Start(ctx, req.GetName(), input, opts...)
	if err != nil {
		return nil, s.grpcError("StartInstance", err)
	}
	return &pb.CreateInstanceResponse{InstanceId: id}, nil
}

// GetInstance answers exists=false for an instance that does not exist.
func (s *Server) GetInstance(ctx context.Context, req *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	st, err := s.client.Status(ctx, req.GetInstanceId())
	return s.instanceResponse("GetInstance", st, err, req.GetGetInputsAndOutputs())
}

func (s *Server) instanceResponse(method string, st *durable.Status, err error, payloads bool) (*pb.GetInstanceResponse, error) {
	if errors.Is(err, durable.ErrInstanceNotFound) {
		return &pb.GetInstanceResponse{Exists: false}, nil
	}
	if err != nil {
		return nil, s.grpcError(method, err)
	}
	return &pb.GetInstanceResponse{Exists: true, OrchestrationState: stateToProto(st, payloads)}, nil
}

// WaitForInstanceStart waits until the instance has left Pending. The
// Client has no subscription for that (its waits are for the end), so it
// polls the status, at most once a quarter second after the first checks.
func (s *Server) WaitForInstanceStart(ctx context.Context, req *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	delay := 5 * time.Millisecond
	for {
		st, err := s.client.Status(ctx, req.GetInstanceId())
		if err != nil || st.RuntimeStatus != durable.StatusPending {
			return s.instanceResponse("WaitForInstanceStart", st, err, req.GetGetInputsAndOutputs())
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, s.grpcError("WaitForInstanceStart", ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 250*time.Millisecond)
	}
}

// WaitForInstanceCompletion waits, through the Client's subscription at
// the owning partition, for the instance to finish.
func (s *Server) WaitForInstanceCompletion(ctx context.Context, req *pb.GetInstanceRequest) (*pb.GetInstanceResponse, error) {
	st, err := s.client.WaitForCompletion(ctx, req.GetInstanceId())
	return s.instanceResponse("WaitForInstanceCompletion", st, err, req.GetGetInputsAndOutputs())
}

// RaiseEvent records an external event durably before it answers.
func (s *Server) RaiseEvent(ctx context.Context, req *pb.RaiseEventRequest) (*pb.RaiseEventResponse, error) {
	var data any
	if p := payload(req.GetInput()); p != nil {
		data = p
	}
	if err := s.client.RaiseEvent(ctx, req.GetInstanceId(), req.GetName(), data); err != nil {
		return nil, s.grpcError("RaiseEvent", err)
	}
	return &pb.RaiseEventResponse{}, nil
}

// TerminateInstance ends an instance; its output becomes the reason (a
// JSON string is taken as its text; the instance's output is then that
// reason as a JSON string).
func (s *Server) TerminateInstance(ctx context.Context, req *pb.TerminateRequest) (*pb.TerminateResponse, error) {
	if req.GetRecursive() {
		return nil, unsupported("recursive termination", "terminating a parent leaves its sub-orchestrations running; terminate them by id")
	}
	if err := s.client.Terminate(ctx, req.GetInstanceId(), reasonOf(req.GetOutput())); err != nil {
		return nil, s.grpcError("TerminateInstance", err)
	}
	return &pb.TerminateResponse{}, nil
}

// SuspendInstance pauses the delivery of events to the instance's code.
func (s *Server) SuspendInstance(ctx context.Context, req *pb.SuspendRequest) (*pb.SuspendResponse, error) {
	if err := s.client.Suspend(ctx, req.GetInstanceId(), reasonOf(req.GetReason())); err != nil {
		return nil, s.grpcError("SuspendInstance", err)
	}
	return &pb.SuspendResponse{}, nil
}

// ResumeInstance resumes a suspended instance.
func (s *Server) ResumeInstance(ctx context.Context, req *pb.ResumeRequest) (*pb.ResumeResponse, error) {
	if err := s.client.Resume(ctx, req.GetInstanceId(), reasonOf(req.GetReason())); err != nil {
		return nil, s.grpcError("ResumeInstance", err)
	}
	return &pb.ResumeResponse{}, nil
}

// RewindInstance re-runs a failed instance from its first failed task.
func (s *Server) RewindInstance(ctx context.Context, req *pb.RewindInstanceRequest) (*pb.RewindInstanceResponse, error) {
	if err := s.client.Rewind(ctx, req.GetInstanceId(), reasonOf(req.GetReason())); err != nil {
		return nil, s.grpcError("RewindInstance", err)
	}
	return &pb.RewindInstanceResponse{}, nil
}

// RestartInstance starts an instance's orchestrator again with its input.
func (s *Server) RestartInstance(ctx context.Context, req *pb.RestartInstanceRequest) (*pb.RestartInstanceResponse, error) {
	id, err := s.client.Restart(ctx, req.GetInstanceId(), req.GetRestartWithNewInstanceId())
	if err != nil {
		return nil, s.grpcError("RestartInstance", err)
	}
	return &pb.RestartInstanceResponse{InstanceId: id}, nil
}

// QueryInstances lists instances a page at a time, from the store's
// indexes. Task hub names are ignored: a node serves one task hub.
func (s *Server) QueryInstances(ctx context.Context, req *pb.QueryInstancesRequest) (*pb.QueryInstancesResponse, error) {
	q := req.GetQuery()
	statuses, err := statusesFromProto(q.GetRuntimeStatus())
	if err != nil {
		return nil, err
	}
	if q.GetMaxInstanceCount() < 0 {
		return nil, invalid("QueryInstances: maxInstanceCount %d is negative", q.GetMaxInstanceCount())
	}
	page, err := s.client.List(ctx, durable.Query{
		Statuses:          statuses,
		CreatedFrom:       timeOf(q.GetCreatedTimeFrom()),
		CreatedTo:         timeOf(q.GetCreatedTimeTo()),
		InstanceIDPrefix:  q.GetInstanceIdPrefix().GetValue(),
		PageSize:          int(q.GetMaxInstanceCount()),
		ContinuationToken: q.GetContinuationToken().GetValue(),
	})
	if err != nil {
		return nil, s.grpcError("QueryInstances", err)
	}
	out := &pb.QueryInstancesResponse{ContinuationToken: optional(page.ContinuationToken)}
	for _, st := range page.Instances {
		out.OrchestrationState = append(out.OrchestrationState, stateToProto(st, q.GetFetchInputsAndOutputs()))
	}
	return out, nil
}

// ListInstanceIds lists instance ids, optionally of instances that
// finished in a time range. durable indexes instances by creation time, so
// the completion range filters each page: a page may hold fewer ids than
// asked for, and lastInstanceKey says where the next one starts.
func (s *Server) ListInstanceIds(ctx context.Context, req *pb.ListInstanceIdsRequest) (*pb.ListInstanceIdsResponse, error) {
	statuses, err := statusesFromProto(req.GetRuntimeStatus())
	if err != nil {
		return nil, err
	}
	if req.GetPageSize() < 0 {
		return nil, invalid("ListInstanceIds: pageSize %d is negative", req.GetPageSize())
	}
	from, to := timeOf(req.GetCompletedTimeFrom()), timeOf(req.GetCompletedTimeTo())
	page, err := s.client.List(ctx, durable.Query{
		Statuses:          statuses,
		PageSize:          int(req.GetPageSize()),
		ContinuationToken: req.GetLastInstanceKey().GetValue(),
	})
	if err != nil {
		return nil, s.grpcError("ListInstanceIds", err)
	}
	out := &pb.ListInstanceIdsResponse{LastInstanceKey: optional(page.ContinuationToken)}
	for _, st := range page.Instances {
		if !from.IsZero() || !to.IsZero() {
			done := st.LastUpdatedAt
			if !st.RuntimeStatus.IsTerminal() || (!from.IsZero() && done.Before(from)) || (!to.IsZero() && done.After(to)) {
				continue
			}
		}
		out.InstanceIds = append(out.InstanceIds, st.InstanceID)
	}
	return out, nil
}

// PurgeInstances deletes one finished instance, a batch of them, or those
// a filter selects. A missing instance counts zero, not an error.
func (s *Server) PurgeInstances(ctx context.Context, req *pb.PurgeInstancesRequest) (*pb.PurgeInstancesResponse, error) {
	if req.GetRecursive() {
		return nil, unsupported("recursive purge", "purging a parent leaves its sub-orchestrations; purge them by id or by filter")
	}
	switch r := req.GetRequest().(type) {
	case *pb.PurgeInstancesRequest_InstanceId:
		n, err := s.purgeOne(ctx, r.InstanceId)
		if err != nil {
			return nil, s.grpcError("PurgeInstances", err)
		}
		return &pb.PurgeInstancesResponse{DeletedInstanceCount: n, IsComplete: wrapperspb.Bool(true)}, nil
	case *pb.PurgeInstancesRequest_InstanceBatch:
		ids := r.InstanceBatch.GetInstanceIds()
		if len(ids) > 500 {
			return nil, invalid("PurgeInstances: %d instance ids in one batch, at most 500", len(ids))
		}
		for _, id := range ids {
			if err := durable.ValidateInstanceID(id); err != nil {
				return nil, s.grpcError("PurgeInstances", err)
			}
		}
		var total int32
		for _, id := range ids {
			n, err := s.purgeOne(ctx, id)
			if err != nil && !errors.Is(err, durable.ErrInstanceNotCompleted) {
				return nil, s.grpcError("PurgeInstances", err)
			}
			total += n
		}
		return &pb.PurgeInstancesResponse{DeletedInstanceCount: total, IsComplete: wrapperspb.Bool(true)}, nil
	case *pb.PurgeInstancesRequest_PurgeInstanceFilter:
		f := r.PurgeInstanceFilter
		statuses, err := statusesFromProto(f.GetRuntimeStatus())
		if err != nil {
			return nil, err
		}
		if d := f.GetTimeout(); d != nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d.AsDuration())
			defer cancel()
		}
		n, err := s.client.PurgeBy(ctx, durable.PurgeFilter{
			CreatedFrom: timeOf(f.GetCreatedTimeFrom()), CreatedTo: timeOf(f.GetCreatedTimeTo()), Statuses: statuses,
		})
		if errors.Is(err, context.DeadlineExceeded) && f.GetTimeout() != nil {
			return &pb.PurgeInstancesResponse{DeletedInstanceCount: int32(n), IsComplete: wrapperspb.Bool(false)}, nil
		}
		if err != nil {
			return nil, s.grpcError("PurgeInstances", err)
		}
		return &pb.PurgeInstancesResponse{DeletedInstanceCount: int32(n), IsComplete: wrapperspb.Bool(true)}, nil
	}
	return nil, invalid("PurgeInstances: give an instanceId, an instanceBatch or a purgeInstanceFilter")
}

// purgeOne purges one instance: 1 if it was deleted, 0 if it did not
// exist.
func (s *Server) purgeOne(ctx context.Context, id string) (int32, error) {
	err := s.client.Purge(ctx, id)
	switch {
	case errors.Is(err, durable.ErrInstanceNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	}
	return 1, nil
}

// historyChunkSize bounds the events of one HistoryChunk, so a long
// history streams in messages well under gRPC's default 4 MiB limit.
const historyChunkSize = 200

// StreamInstanceHistory streams the current execution's history. An
// executionId other than the current execution's is NotFound: durable
// keeps earlier executions only with continue-as-new's KeepHistory, and
// answers those through the Client's AllExecutions.
func (s *Server) StreamInstanceHistory(req *pb.StreamInstanceHistoryRequest, stream pb.TaskHubSidecarService_StreamInstanceHistoryServer) error {
	ctx := stream.Context()
	events, err := s.client.History(ctx, req.GetInstanceId())
	if err != nil {
		return s.grpcError("StreamInstanceHistory", err)
	}
	if want := req.GetExecutionId().GetValue(); want != "" && (len(events) == 0 || executionOf(events) != want) {
		return s.grpcError("StreamInstanceHistory", errors.Join(durable.ErrInstanceNotFound, errors.New("no such execution: "+want)))
	}
	for len(events) > 0 {
		n := min(len(events), historyChunkSize)
		chunk := &pb.HistoryChunk{Events: make([]*pb.HistoryEvent, n)}
		for i, ev := range events[:n] {
			chunk.Events[i] = eventToProto(ev)
		}
		if err := stream.Send(chunk); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

// executionOf is the execution id of a history: its ExecutionStarted's.
func executionOf(events []*history.Event) string {
	for _, ev := range events {
		if ev.Type == history.ExecutionStarted {
			return ev.ExecutionID
		}
	}
	return ""
}
