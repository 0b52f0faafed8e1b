package sidecar

import (
	"encoding/json"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// The mapping between durable's values and the protocol's. Payloads are
// JSON text on both sides: durable keeps bytes, the protocol a string.

// noEventID is the eventId of an event that opens no task.
const noEventID = -1

// statusToProto maps the Client's statuses onto the protocol's enum.
var statusToProto = map[durable.RuntimeStatus]pb.OrchestrationStatus{
	durable.StatusPending:        pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING,
	durable.StatusRunning:        pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING,
	durable.StatusCompleted:      pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED,
	durable.StatusFailed:         pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED,
	durable.StatusTerminated:     pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED,
	durable.StatusSuspended:      pb.OrchestrationStatus_ORCHESTRATION_STATUS_SUSPENDED,
	durable.StatusContinuedAsNew: pb.OrchestrationStatus_ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
	durable.StatusCanceled:       pb.OrchestrationStatus_ORCHESTRATION_STATUS_CANCELED,
}

// statusFromProto is the Client's status of a protocol status, false for a
// number the protocol does not define.
func statusFromProto(s pb.OrchestrationStatus) (durable.RuntimeStatus, bool) {
	for name, code := range statusToProto {
		if code == s {
			return name, true
		}
	}
	return "", false
}

func statusesFromProto(in []pb.OrchestrationStatus) ([]durable.RuntimeStatus, error) {
	var out []durable.RuntimeStatus
	for _, s := range in {
		st, ok := statusFromProto(s)
		if !ok {
			return nil, invalid("unknown orchestration status %d", s)
		}
		out = append(out, st)
	}
	return out, nil
}

// str is a JSON payload as the protocol's optional string; no payload is
// no value.
func str(b []byte) *wrapperspb.StringValue {
	if len(b) == 0 {
		return nil
	}
	return wrapperspb.String(string(b))
}

// jsonString is s encoded as a JSON string, for the protocol fields that
// carry a reason as a payload.
func jsonString(s string) *wrapperspb.StringValue {
	if s == "" {
		return nil
	}
	b, _ := json.Marshal(s)
	return wrapperspb.String(string(b))
}

// payload is the protocol's optional JSON text as durable's payload: nil
// when absent or empty. Its validity is the Client's to check.
func payload(v *wrapperspb.StringValue) json.RawMessage {
	if v == nil || v.GetValue() == "" {
		return nil
	}
	return json.RawMessage(v.GetValue())
}

// reasonOf is the protocol's reason or output (JSON text, as the SDKs
// send it) as durable's plain-text reason: a JSON string is decoded, JSON
// null is no reason, anything else is kept as its text.
func reasonOf(v *wrapperspb.StringValue) string {
	text := strings.TrimSpace(v.GetValue())
	if text == "" || text == "null" {
		return ""
	}
	var s string
	if json.Unmarshal([]byte(text), &s) == nil {
		return s
	}
	return text
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// failureToProto keeps the whole chain of inner failures.
func failureToProto(f *history.Failure) *pb.TaskFailureDetails {
	if f == nil {
		return nil
	}
	out := &pb.TaskFailureDetails{ErrorType: f.ErrorType, ErrorMessage: f.Message, InnerFailure: failureToProto(f.Inner)}
	if f.StackTrace != "" {
		out.StackTrace = wrapperspb.String(f.StackTrace)
	}
	return out
}

func failureFromProto(f *pb.TaskFailureDetails) *history.Failure {
	if f == nil {
		return nil
	}
	return &history.Failure{
		ErrorType:  f.GetErrorType(),
		Message:    f.GetErrorMessage(),
		StackTrace: f.GetStackTrace().GetValue(),
		Inner:      failureFromProto(f.GetInnerFailure()),
	}
}

// stateToProto is an instance's status as the protocol's state; without
// payloads, input, output and custom status are left out.
func stateToProto(st *durable.Status, payloads bool) *pb.OrchestrationState {
	out := &pb.OrchestrationState{
		InstanceId:           st.InstanceID,
		Name:                 st.Name,
		OrchestrationStatus:  statusToProto[st.RuntimeStatus],
		CreatedTimestamp:     ts(st.CreatedAt),
		LastUpdatedTimestamp: ts(st.LastUpdatedAt),
		FailureDetails:       failureToProto(st.Failure),
	}
	if st.RuntimeStatus.IsTerminal() {
		out.CompletedTimestamp = ts(st.LastUpdatedAt)
	}
	if payloads {
		out.Input, out.Output, out.CustomStatus = str(st.Input), str(st.Output), str(st.CustomStatus)
	}
	return out
}

// entityInstanceID is an entity id as the protocol spells it in
// histories: "@name@key".
func entityInstanceID(id string) string {
	if id == "" || strings.HasPrefix(id, "@") {
		return id
	}
	return "@" + id
}

// eventToProto maps one history event onto the protocol's kind for it. The
// eventId of an event that opens a task (an activity, a timer, a
// sub-orchestration) is its task id, which its completion names; the others
// have eventId -1. durable's two kinds the protocol has no event for
// (CustomStatusSet, PatchMarker) become GenericEvents carrying their name
// and payload.
func eventToProto(ev *history.Event) *pb.HistoryEvent {
	out := &pb.HistoryEvent{EventId: noEventID, Timestamp: ts(ev.Timestamp)}
	id := int32(ev.TaskID)
	switch ev.Type {
	case history.ExecutionStarted:
		started := &pb.ExecutionStartedEvent{
			Name:                  ev.Name,
			Input:                 str(ev.Payload),
			OrchestrationInstance: &pb.OrchestrationInstance{InstanceId: ev.InstanceID, ExecutionId: optional(ev.ExecutionID)},
		}
		if ev.ParentInstanceID != "" {
			started.ParentInstance = &pb.ParentInstanceInfo{
				TaskScheduledId:       int32(ev.ParentTaskID),
				OrchestrationInstance: &pb.OrchestrationInstance{InstanceId: ev.ParentInstanceID, ExecutionId: optional(ev.ParentExecutionID)},
			}
		}
		out.EventType = &pb.HistoryEvent_ExecutionStarted{ExecutionStarted: started}
	case history.OrchestratorStarted:
		out.EventType = &pb.HistoryEvent_OrchestratorStarted{OrchestratorStarted: &pb.OrchestratorStartedEvent{}}
	case history.TaskScheduled:
		out.EventId = id
		out.EventType = &pb.HistoryEvent_TaskScheduled{TaskScheduled: &pb.TaskScheduledEvent{Name: ev.Name, Input: str(ev.Payload)}}
	case history.TaskCompleted:
		out.EventType = &pb.HistoryEvent_TaskCompleted{TaskCompleted: &pb.TaskCompletedEvent{TaskScheduledId: id, Result: str(ev.Payload)}}
	case history.TaskFailed:
		out.EventType = &pb.HistoryEvent_TaskFailed{TaskFailed: &pb.TaskFailedEvent{TaskScheduledId: id, FailureDetails: failureToProto(ev.Failure)}}
	case history.TimerCreated:
		out.EventId = id
		out.EventType = &pb.HistoryEvent_TimerCreated{TimerCreated: &pb.TimerCreatedEvent{FireAt: ts(ev.FireAt)}}
	case history.TimerFired:
		out.EventType = &pb.HistoryEvent_TimerFired{TimerFired: &pb.TimerFiredEvent{FireAt: ts(ev.FireAt), TimerId: id}}
	case history.EventRaised:
		out.EventType = &pb.HistoryEvent_EventRaised{EventRaised: &pb.EventRaisedEvent{Name: ev.Name, Input: str(ev.Payload)}}
	case history.EventSent:
		out.EventId = id
		out.EventType = &pb.HistoryEvent_EventSent{EventSent: &pb.EventSentEvent{InstanceId: ev.InstanceID, Name: ev.Name, Input: str(ev.Payload)}}
	case history.SubOrchestrationCreated:
		out.EventId = id
		out.EventType = &pb.HistoryEvent_SubOrchestrationInstanceCreated{SubOrchestrationInstanceCreated: &pb.SubOrchestrationInstanceCreatedEvent{
			InstanceId: ev.InstanceID, Name: ev.Name, Input: str(ev.Payload),
		}}
	case history.SubOrchestrationCompleted:
		out.EventType = &pb.HistoryEvent_SubOrchestrationInstanceCompleted{SubOrchestrationInstanceCompleted: &pb.SubOrchestrationInstanceCompletedEvent{
			TaskScheduledId: id, Result: str(ev.Payload),
		}}
	case history.SubOrchestrationFailed:
		out.EventType = &pb.HistoryEvent_SubOrchestrationInstanceFailed{SubOrchestrationInstanceFailed: &pb.SubOrchestrationInstanceFailedEvent{
			TaskScheduledId: id, FailureDetails: failureToProto(ev.Failure),
		}}
	case history.ExecutionCompleted:
		done := &pb.ExecutionCompletedEvent{OrchestrationStatus: pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, Result: str(ev.Payload)}
		if ev.Failure != nil {
			done.OrchestrationStatus, done.FailureDetails = pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED, failureToProto(ev.Failure)
		}
		out.EventType = &pb.HistoryEvent_ExecutionCompleted{ExecutionCompleted: done}
	case history.ExecutionTerminated:
		out.EventType = &pb.HistoryEvent_ExecutionTerminated{ExecutionTerminated: &pb.ExecutionTerminatedEvent{Input: jsonString(ev.Reason)}}
	case history.ExecutionSuspended:
		out.EventType = &pb.HistoryEvent_ExecutionSuspended{ExecutionSuspended: &pb.ExecutionSuspendedEvent{Input: jsonString(ev.Reason)}}
	case history.ExecutionResumed:
		out.EventType = &pb.HistoryEvent_ExecutionResumed{ExecutionResumed: &pb.ExecutionResumedEvent{Input: jsonString(ev.Reason)}}
	case history.ContinuedAsNew:
		out.EventType = &pb.HistoryEvent_ContinueAsNew{ContinueAsNew: &pb.ContinueAsNewEvent{Input: str(ev.Payload)}}
	case history.EntityOperationCalled:
		out.EventId = id
		out.EventType = &pb.HistoryEvent_EntityOperationCalled{EntityOperationCalled: &pb.EntityOperationCalledEvent{
			RequestId: ev.Reason, Operation: ev.Name, Input: str(ev.Payload), TargetInstanceId: optional(entityInstanceID(ev.InstanceID)),
		}}
	case history.EntityOperationSignaled:
		out.EventId = id
		out.EventType = &pb.HistoryEvent_EntityOperationSignaled{EntityOperationSignaled: &pb.EntityOperationSignaledEvent{
			RequestId: ev.Reason, Operation: ev.Name, Input: str(ev.Payload), ScheduledTime: ts(ev.FireAt), TargetInstanceId: optional(entityInstanceID(ev.InstanceID)),
		}}
	case history.EntityLockRequested:
		out.EventId = id
		var set []string
		_ = json.Unmarshal(ev.Payload, &set) // the locked set, as the engine wrote it
		for i := range set {
			set[i] = entityInstanceID(set[i])
		}
		out.EventType = &pb.HistoryEvent_EntityLockRequested{EntityLockRequested: &pb.EntityLockRequestedEvent{CriticalSectionId: ev.Reason, LockSet: set}}
	case history.EntityLockGranted:
		out.EventType = &pb.HistoryEvent_EntityLockGranted{EntityLockGranted: &pb.EntityLockGrantedEvent{}}
	case history.EntityUnlockSent:
		out.EventId = id
		out.EventType = &pb.HistoryEvent_EntityUnlockSent{EntityUnlockSent: &pb.EntityUnlockSentEvent{CriticalSectionId: ev.Reason, TargetInstanceId: optional(entityInstanceID(ev.InstanceID))}}
	case history.EntityOperationCompleted:
		out.EventType = &pb.HistoryEvent_EntityOperationCompleted{EntityOperationCompleted: &pb.EntityOperationCompletedEvent{Output: str(ev.Payload)}}
	case history.EntityOperationFailed:
		out.EventType = &pb.HistoryEvent_EntityOperationFailed{EntityOperationFailed: &pb.EntityOperationFailedEvent{FailureDetails: failureToProto(ev.Failure)}}
	default:
		data, _ := json.Marshal(struct {
			Type    string          `json:"type"`
			Name    string          `json:"name,omitempty"`
			Payload json.RawMessage `json:"payload,omitempty"`
		}{ev.Type.String(), ev.Name, rawOrNil(ev.Payload)})
		out.EventType = &pb.HistoryEvent_GenericEvent{GenericEvent: &pb.GenericEvent{Data: wrapperspb.String(string(data))}}
	}
	return out
}

func optional(s string) *wrapperspb.StringValue {
	if s == "" {
		return nil
	}
	return wrapperspb.String(s)
}

func rawOrNil(b []byte) json.RawMessage {
	if len(b) == 0 || !json.Valid(b) {
		return nil
	}
	return b
}
