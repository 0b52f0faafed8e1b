package sidecar

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// ErrorTypeNotSupported is the ErrorType of the failure of a remote
// orchestration whose code asked for an action durable does not take from
// a worker.
const ErrorTypeNotSupported = "NotSupported"

// eventsToProto is a history as the worker sees it.
func eventsToProto(events []*history.Event) []*pb.HistoryEvent {
	out := make([]*pb.HistoryEvent, 0, len(events))
	for _, ev := range events {
		out = append(out, eventToProto(ev))
	}
	return out
}

// turnEventsToProto is eventsToProto for a worker's turn: the response to
// an entity call carries the request id of the call, and a lock's grant
// the id of its critical section (durable keeps them in the Reason of the
// call's or the request's event), by which the worker's code finds them.
func turnEventsToProto(events []*history.Event, requests map[int64]string) []*pb.HistoryEvent {
	out := eventsToProto(events)
	for i, ev := range events {
		switch x := out[i].GetEventType().(type) {
		case *pb.HistoryEvent_EntityOperationCompleted:
			x.EntityOperationCompleted.RequestId = requests[ev.TaskID]
		case *pb.HistoryEvent_EntityOperationFailed:
			x.EntityOperationFailed.RequestId = requests[ev.TaskID]
		case *pb.HistoryEvent_EntityLockGranted:
			x.EntityLockGranted.CriticalSectionId = requests[ev.TaskID]
		}
	}
	return out
}

// entityRequests maps the task id of each entity call and lock request in
// the histories to its request id or critical section id.
func entityRequests(histories ...[]*history.Event) map[int64]string {
	out := map[int64]string{}
	for _, events := range histories {
		for _, ev := range events {
			if (ev.Type == history.EntityOperationCalled || ev.Type == history.EntityLockRequested) && ev.Reason != "" {
				out[ev.TaskID] = ev.Reason
			}
		}
	}
	return out
}

// entityMessageEvent is the history event of a sendEntityMessage action
// under the action's id: a call or a signal (its request id in Reason), a
// lock request or a release (the critical section's id in Reason); nil for
// a kind durable does not know.
func entityMessageEvent(id int64, m *pb.SendEntityMessageAction) (*history.Event, error) {
	var ev *history.Event
	var target string
	switch x := m.GetEntityMessageType().(type) {
	case *pb.SendEntityMessageAction_EntityOperationCalled:
		c := x.EntityOperationCalled
		target = c.GetTargetInstanceId().GetValue()
		ev = &history.Event{Type: history.EntityOperationCalled, Name: c.GetOperation(), Reason: c.GetRequestId()}
		in, err := jsonPayload("entity call input", c.GetInput().GetValue())
		if err != nil {
			return nil, err
		}
		ev.Payload = in
		if at := c.GetScheduledTime(); at != nil {
			ev.FireAt = at.AsTime().UTC()
		}
	case *pb.SendEntityMessageAction_EntityOperationSignaled:
		sig := x.EntityOperationSignaled
		target = sig.GetTargetInstanceId().GetValue()
		ev = &history.Event{Type: history.EntityOperationSignaled, Name: sig.GetOperation(), Reason: sig.GetRequestId()}
		in, err := jsonPayload("entity signal input", sig.GetInput().GetValue())
		if err != nil {
			return nil, err
		}
		ev.Payload = in
		if at := sig.GetScheduledTime(); at != nil {
			ev.FireAt = at.AsTime().UTC()
		}
	case *pb.SendEntityMessageAction_EntityLockRequested:
		// The set is locked in durable's one global order (that of Go
		// orchestrations), each entity after the one before grants.
		l := x.EntityLockRequested
		if len(l.GetLockSet()) == 0 {
			return nil, invalid("CompleteOrchestratorTask: lock request %d locks no entity", id)
		}
		set := make([]string, 0, len(l.GetLockSet()))
		for _, s := range l.GetLockSet() {
			eid, err := entityID(s)
			if err != nil {
				return nil, invalid("CompleteOrchestratorTask: lock request %d locks %q: %v", id, s, err)
			}
			if !slices.Contains(set, eid.String()) {
				set = append(set, eid.String())
			}
		}
		sort.Strings(set)
		payload, _ := json.Marshal(set)
		return &history.Event{Type: history.EntityLockRequested, TaskID: id, Payload: payload, Reason: l.GetCriticalSectionId()}, nil
	case *pb.SendEntityMessageAction_EntityUnlockSent:
		u := x.EntityUnlockSent
		eid, err := entityID(u.GetTargetInstanceId().GetValue())
		if err != nil {
			return nil, invalid("CompleteOrchestratorTask: release %d targets %q: %v", id, u.GetTargetInstanceId().GetValue(), err)
		}
		payload, _ := json.Marshal([]string{eid.String()})
		return &history.Event{Type: history.EntityUnlockSent, TaskID: id, InstanceID: eid.String(), Payload: payload, Reason: u.GetCriticalSectionId()}, nil
	default:
		return nil, nil
	}
	eid, err := entityID(target)
	if err != nil {
		return nil, invalid("CompleteOrchestratorTask: sendEntityMessage %d targets %q: %v", id, target, err)
	}
	if ev.Name == "" {
		return nil, invalid("CompleteOrchestratorTask: sendEntityMessage %d has no operation name", id)
	}
	ev.InstanceID, ev.TaskID = eid.String(), id
	return ev, nil
}

// resultFromProto reads a worker's answer to turn: each action becomes the
// history event that records it, under the action's id as task id, at the
// turn's time. A malformed answer is an InvalidArgument error (nothing is
// taken); an action durable does not support ends the execution with a
// NotSupported failure that names it, since the code asked for what cannot
// be done.
func resultFromProto(turn *durable.RemoteTurn, res *pb.OrchestratorResponse) (*durable.RemoteResult, error) {
	if res.GetIsPartial() {
		return nil, invalid("CompleteOrchestratorTask: chunked (partial) completions are not supported; send all actions at once")
	}
	if id := res.GetInstanceId(); id != "" && id != turn.InstanceID {
		return nil, invalid("CompleteOrchestratorTask: the completion token is of instance %q, not %q", turn.InstanceID, id)
	}
	out := &durable.RemoteResult{}
	if cs := payload(res.GetCustomStatus()); cs != nil {
		if !json.Valid(cs) {
			return nil, invalid("CompleteOrchestratorTask: custom status is not valid JSON")
		}
		out.CustomStatus = cs
	}
	now := turn.Now
	for i, a := range res.GetActions() {
		id := int64(a.GetId())
		ev, err := actionEvent(turn, a)
		if err != nil {
			return nil, err
		}
		if ev == nil {
			// Not supported: the execution fails here, and what it asked
			// for after this action is not done.
			out.Events = append(out.Events, &history.Event{Type: history.ExecutionCompleted, Timestamp: now, Failure: &history.Failure{
				ErrorType: ErrorTypeNotSupported,
				Message:   fmt.Sprintf("action %d (%s) of orchestrator %q: durable does not support it from remote workers", i, actionKind(a), turn.Name),
			}})
			return out, nil
		}
		ev.Timestamp = now
		if ev.Type.Opens() {
			ev.TaskID = id
		}
		if c := a.GetCompleteOrchestration(); c != nil && c.GetOrchestrationStatus() == pb.OrchestrationStatus_ORCHESTRATION_STATUS_CONTINUED_AS_NEW {
			for _, carried := range c.GetCarryoverEvents() {
				if raised := carried.GetEventRaised(); raised != nil {
					out.CarryOver = append(out.CarryOver, &history.Event{Type: history.EventRaised, Timestamp: now, Name: raised.GetName(), Payload: payload(raised.GetInput())})
				}
			}
		}
		out.Events = append(out.Events, ev)
		if ev.Type == history.ExecutionCompleted || ev.Type == history.ContinuedAsNew {
			if i != len(res.GetActions())-1 {
				return nil, invalid("CompleteOrchestratorTask: action %d completes the orchestration but is not the last", i)
			}
		}
	}
	return out, nil
}

// actionEvent is the history event of one action; nil for an action
// durable does not support.
func actionEvent(turn *durable.RemoteTurn, a *pb.OrchestratorAction) (*history.Event, error) {
	switch x := a.GetOrchestratorActionType().(type) {
	case *pb.OrchestratorAction_ScheduleTask:
		if x.ScheduleTask.GetName() == "" {
			return nil, invalid("CompleteOrchestratorTask: scheduleTask %d has no name", a.GetId())
		}
		in, err := jsonPayload("scheduleTask input", x.ScheduleTask.GetInput().GetValue())
		return &history.Event{Type: history.TaskScheduled, Name: x.ScheduleTask.GetName(), Payload: in}, err
	case *pb.OrchestratorAction_CreateTimer:
		if x.CreateTimer.GetFireAt() == nil {
			return nil, invalid("CompleteOrchestratorTask: createTimer %d has no fireAt", a.GetId())
		}
		return &history.Event{Type: history.TimerCreated, FireAt: x.CreateTimer.GetFireAt().AsTime().UTC()}, nil
	case *pb.OrchestratorAction_CreateSubOrchestration:
		sub := x.CreateSubOrchestration
		if sub.GetName() == "" {
			return nil, invalid("CompleteOrchestratorTask: createSubOrchestration %d has no name", a.GetId())
		}
		child := sub.GetInstanceId()
		if child == "" {
			child = fmt.Sprintf("%s:%04d", turn.InstanceID, a.GetId())
		}
		if err := durable.ValidateInstanceID(child); err != nil {
			return nil, invalid("CompleteOrchestratorTask: createSubOrchestration %d: %v", a.GetId(), err)
		}
		in, err := jsonPayload("createSubOrchestration input", sub.GetInput().GetValue())
		return &history.Event{Type: history.SubOrchestrationCreated, Name: sub.GetName(), InstanceID: child, Payload: in}, err
	case *pb.OrchestratorAction_CompleteOrchestration:
		c := x.CompleteOrchestration
		result, err := jsonPayload("completeOrchestration result", c.GetResult().GetValue())
		if err != nil {
			return nil, err
		}
		switch c.GetOrchestrationStatus() {
		case pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED:
			return &history.Event{Type: history.ExecutionCompleted, Payload: result}, nil
		case pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED:
			f := failureFromProto(c.GetFailureDetails())
			if f == nil {
				f = &history.Failure{ErrorType: "OrchestrationFailed", Message: c.GetDetails().GetValue()}
			}
			return &history.Event{Type: history.ExecutionCompleted, Failure: f}, nil
		case pb.OrchestrationStatus_ORCHESTRATION_STATUS_CONTINUED_AS_NEW:
			return &history.Event{Type: history.ContinuedAsNew, Payload: result}, nil
		}
		return nil, invalid("CompleteOrchestratorTask: completeOrchestration with status %s; durable takes COMPLETED, FAILED or CONTINUED_AS_NEW", c.GetOrchestrationStatus())
	case *pb.OrchestratorAction_SendEntityMessage:
		return entityMessageEvent(int64(a.GetId()), x.SendEntityMessage)
	case nil:
		return nil, invalid("CompleteOrchestratorTask: action %d has no type", a.GetId())
	}
	return nil, nil // sendEvent, terminateOrchestration, rewindOrchestration
}

func actionKind(a *pb.OrchestratorAction) string {
	switch a.GetOrchestratorActionType().(type) {
	case *pb.OrchestratorAction_SendEvent:
		return "sendEvent"
	case *pb.OrchestratorAction_TerminateOrchestration:
		return "terminateOrchestration"
	case *pb.OrchestratorAction_SendEntityMessage:
		return "sendEntityMessage"
	case *pb.OrchestratorAction_RewindOrchestration:
		return "rewindOrchestration"
	}
	return "unknown"
}

// jsonPayload is a payload the worker sent: empty is none, anything else
// must be JSON.
func jsonPayload(what, text string) ([]byte, error) {
	if text == "" {
		return nil, nil
	}
	if !json.Valid([]byte(text)) {
		return nil, invalid("CompleteOrchestratorTask: %s is not valid JSON", what)
	}
	return []byte(text), nil
}
