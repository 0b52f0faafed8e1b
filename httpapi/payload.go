package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
)

// TimeFormat is the format of createdTime and lastUpdatedTime in status
// payloads: Durable Functions' ToString("s")+"Z", UTC without fraction.
const TimeFormat = "2006-01-02T15:04:05Z"

// StatusPayload is the status of an instance as the API shows it
// (Durable Functions' StatusResponsePayload). Input and Output are always
// present, as null when empty: the npm client rejects a payload without them.
type StatusPayload struct {
	Name            string          `json:"name"`
	InstanceID      string          `json:"instanceId"`
	RuntimeStatus   string          `json:"runtimeStatus"`
	Input           json.RawMessage `json:"input"`
	CustomStatus    json.RawMessage `json:"customStatus"`
	Output          json.RawMessage `json:"output"`
	CreatedTime     string          `json:"createdTime"`
	LastUpdatedTime string          `json:"lastUpdatedTime"`
	// FailureDetails says why a Failed instance failed (not in Durable
	// Functions' payload; its clients ignore it).
	FailureDetails *FailureDetails `json:"failureDetails,omitempty"`
	// HistoryEvents is present only when showHistory=true.
	HistoryEvents *[]HistoryEvent `json:"historyEvents,omitempty"`
	// Version is the orchestrator version the instance runs (absent when
	// unversioned), and VersionNotRegistered says the serving node has no
	// code for it, so the instance waits (not in Durable Functions'
	// payload).
	Version              string `json:"version,omitempty"`
	VersionNotRegistered bool   `json:"versionNotRegistered,omitempty"`
}

// FailureDetails describes a failure, with Durable Task's field names.
type FailureDetails struct {
	ErrorType    string `json:"ErrorType"`
	ErrorMessage string `json:"ErrorMessage"`
	StackTrace   string `json:"StackTrace,omitempty"`
	// InnerFailure is the failure that caused this one (an activity's
	// under the sub-orchestration's it failed), as in Durable Task.
	InnerFailure *FailureDetails `json:"InnerFailure,omitempty"`
}

// CheckStatusPayload is the 202 answer of a start or restart: the instance
// id and the URLs that manage it. The URLs keep Durable Functions'
// placeholders {eventName} (sendEventPostUri) and {text} (the reason of
// terminate, suspend and resume).
type CheckStatusPayload struct {
	ID                    string `json:"id"`
	StatusQueryGetURI     string `json:"statusQueryGetUri"`
	SendEventPostURI      string `json:"sendEventPostUri"`
	TerminatePostURI      string `json:"terminatePostUri"`
	PurgeHistoryDeleteURI string `json:"purgeHistoryDeleteUri"`
	RestartPostURI        string `json:"restartPostUri"`
	SuspendPostURI        string `json:"suspendPostUri"`
	ResumePostURI         string `json:"resumePostUri"`
}

// PurgeResult is the answer of a purge.
type PurgeResult struct {
	InstancesDeleted int `json:"instancesDeleted"`
}

// HistoryEvent is one event of an instance's history as Durable Functions
// shows it (PascalCase keys). As there, the scheduling of an activity or
// sub-orchestration is folded into its completion (FunctionName,
// ScheduledTime), turn markers (OrchestratorStarted) are left out, and
// results (and event payloads, as Input) appear only with
// showHistoryOutput=true.
//
// The fields after Timestamp are not Durable Functions': they carry what a
// replay of the history needs (durabletest.ReplayJSON rebuilds the events
// from them), and its clients ignore them.
type HistoryEvent struct {
	EventType           string          `json:"EventType"`
	Name                string          `json:"Name,omitempty"`
	FunctionName        string          `json:"FunctionName,omitempty"`
	InstanceID          string          `json:"InstanceId,omitempty"`
	OrchestrationStatus string          `json:"OrchestrationStatus,omitempty"`
	Reason              string          `json:"Reason,omitempty"`
	Details             string          `json:"Details,omitempty"`
	Input               json.RawMessage `json:"Input,omitempty"`
	Result              json.RawMessage `json:"Result,omitempty"`
	FailureDetails      *FailureDetails `json:"FailureDetails,omitempty"`
	FireAt              string          `json:"FireAt,omitempty"`
	ScheduledTime       string          `json:"ScheduledTime,omitempty"`
	Timestamp           string          `json:"Timestamp"`
	// Version is the orchestrator version an ExecutionStarted event
	// records (absent when unversioned), as in Durable Task.
	Version string `json:"Version,omitempty"`

	// Position is the event's index in the execution's history, counting
	// the events left out or folded (what a NonDeterminismError names).
	Position *int `json:"Position,omitempty"`
	// TaskID is the task the event opens, closes or records an action
	// under (the id that pairs a completion with its scheduling).
	TaskID *int64 `json:"TaskId,omitempty"`
	// ExecutionID is the execution an ExecutionStarted event begins.
	ExecutionID string `json:"ExecutionId,omitempty"`
	// ParentInstanceID is, on the ExecutionStarted event of a
	// sub-orchestration, the instance that called it.
	ParentInstanceID string `json:"ParentInstanceId,omitempty"`
	// TraceParent is, on an ExecutionStarted event, the W3C trace context
	// the execution's spans join.
	TraceParent string `json:"TraceParent,omitempty"`
	// Scheduled is the scheduling event folded into this completion, as
	// it would be shown on its own (with its input under showHistoryOutput).
	Scheduled *HistoryEvent `json:"Scheduled,omitempty"`
	// OrchestratorStartedTime is the Timestamp of the turn marker
	// (OrchestratorStarted, left out) right before this event, at
	// Position-1: the time the code saw as Now during that turn.
	OrchestratorStartedTime string `json:"OrchestratorStartedTime,omitempty"`
}

// carriesTaskID reports whether events of type t name a task: the actions
// matched by task id on replay and the completions.
func carriesTaskID(t history.Type) bool {
	switch t {
	case history.ExecutionCompleted, history.ContinuedAsNew, history.PatchMarker:
		return false
	}
	return t.IsAction() || t.IsCompletion()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// formatEventTime keeps the fraction, as Durable Functions' history does.
func formatEventTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// orNull turns an empty payload into nil, which json.RawMessage encodes as
// null (an empty, non-nil RawMessage would not encode at all).
func orNull(b []byte) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

func statusPayload(st *durable.Status, showInput bool) *StatusPayload {
	p := &StatusPayload{
		Name:            st.Name,
		InstanceID:      st.InstanceID,
		RuntimeStatus:   string(st.RuntimeStatus),
		CustomStatus:    orNull(st.CustomStatus),
		Output:          orNull(st.Output),
		CreatedTime:     formatTime(st.CreatedAt),
		LastUpdatedTime: formatTime(st.LastUpdatedAt),

		Version:              st.Version,
		VersionNotRegistered: st.VersionNotRegistered,
	}
	if showInput {
		p.Input = orNull(st.Input)
	}
	if f := st.Failure; f != nil {
		p.FailureDetails = historyFailure(f)
		if p.Output == nil {
			// Durable Functions puts the failure message in the output of a
			// failed instance.
			p.Output, _ = json.Marshal(fmt.Sprintf("Orchestrator function '%s' failed: %s", st.Name, f.Message))
		}
	}
	return p
}

func historyFailure(f *history.Failure) *FailureDetails {
	if f == nil {
		return nil
	}
	return &FailureDetails{ErrorType: f.ErrorType, ErrorMessage: f.Message, StackTrace: f.StackTrace, InnerFailure: historyFailure(f.Inner)}
}

// historyEvents renders a history the way Durable Functions does.
func historyEvents(events []*history.Event, showOutput bool) []HistoryEvent {
	type scheduled struct {
		index int
		typ   history.Type
		name  string
		at    time.Time
	}
	// Scheduling events by task id, so that the completion that closes one
	// can absorb it; folded ones are dropped at the end.
	folded := map[int64]scheduled{}
	drop := map[int]bool{}
	out := make([]HistoryEvent, 0, len(events))
	result := func(b []byte) json.RawMessage {
		if !showOutput {
			return nil
		}
		if len(b) == 0 {
			return json.RawMessage("null")
		}
		return json.RawMessage(b)
	}
	turnStarted := "" // the Timestamp of a turn marker not shown yet
	for i, ev := range events {
		if ev.Type == history.OrchestratorStarted {
			turnStarted = formatEventTime(ev.Timestamp)
			continue
		}
		pos := i
		he := HistoryEvent{EventType: ev.Type.String(), Timestamp: formatEventTime(ev.Timestamp), Position: &pos, OrchestratorStartedTime: turnStarted}
		turnStarted = ""
		if carriesTaskID(ev.Type) {
			id := ev.TaskID
			he.TaskID = &id
		}
		if ev.Type.IsCompletion() {
			// The outcome of a task, with the scheduling it closes folded in.
			if s, ok := folded[ev.TaskID]; ok && s.typ == ev.Type.Closes() {
				he.FunctionName = s.name
				he.ScheduledTime = formatEventTime(s.at)
				sched := out[s.index]
				he.Scheduled = &sched
				drop[s.index] = true
				delete(folded, ev.TaskID)
			}
			switch {
			case ev.Failure != nil:
				he.Reason = ev.Failure.Message
				he.Details = ev.Failure.StackTrace
				he.FailureDetails = historyFailure(ev.Failure)
			case ev.Type.HasResult():
				he.Result = result(ev.Payload)
			}
		}
		switch ev.Type {
		case history.ExecutionStarted:
			he.ParentInstanceID, he.TraceParent = ev.ParentInstanceID, ev.TraceParent
			he.FunctionName = ev.Name
			he.InstanceID = ev.InstanceID
			he.ExecutionID = ev.ExecutionID
			he.Version = ev.Version
			he.Input = result(ev.Payload)
		case history.TaskScheduled, history.SubOrchestrationCreated:
			// Durable Functions shows these only folded into their
			// completion (kept while the task is open).
			folded[ev.TaskID] = scheduled{index: len(out), typ: ev.Type, name: ev.Name, at: ev.Timestamp}
			he.Name = ev.Name
			he.InstanceID = ev.InstanceID
			he.Input = result(ev.Payload)
		case history.TimerCreated, history.TimerFired:
			he.FireAt = formatEventTime(ev.FireAt)
		case history.ExecutionCompleted:
			if ev.Failure != nil {
				he.OrchestrationStatus = string(durable.StatusFailed)
				he.FailureDetails = historyFailure(ev.Failure)
			} else {
				he.OrchestrationStatus = string(durable.StatusCompleted)
				he.Result = result(ev.Payload)
			}
		case history.ContinuedAsNew:
			he.Result = result(ev.Payload)
		case history.ExecutionTerminated, history.ExecutionSuspended, history.ExecutionResumed:
			he.Reason = ev.Reason
		case history.EventRaised, history.EventSent:
			// Durable Functions leaves the payload out; with
			// showHistoryOutput it is shown here, as Input.
			he.Name = ev.Name
			he.InstanceID = ev.InstanceID
			he.Input = result(ev.Payload)
		default:
			// Entity operations, custom status, patch markers: their names
			// (completions have their outcome above).
			he.Name = ev.Name
			he.InstanceID = ev.InstanceID
		}
		out = append(out, he)
	}
	if len(drop) == 0 {
		return out
	}
	kept := out[:0]
	for i, he := range out {
		if !drop[i] {
			kept = append(kept, he)
		}
	}
	return kept
}

// origin is scheme://host of the request, which the returned URLs use.
func (h *Handler) origin(r *http.Request) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if h.opts.TrustForwardedHeaders {
		fh, fp := r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto")
		if fh != "" && (fp == "http" || fp == "https") {
			scheme, host = fp, fh
		}
	}
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}

// querySuffix is what every returned URL carries: taskHub, connection and,
// when an API key is configured, code.
func (h *Handler) querySuffix() string {
	q := "taskHub=" + url.QueryEscape(h.opts.TaskHub) + "&connection=" + url.QueryEscape(h.opts.Connection)
	if h.opts.APIKey != "" {
		q += "&code=" + url.QueryEscape(h.opts.APIKey)
	}
	return q
}

// CheckStatus returns the check-status payload of instance id, with URLs
// built from the request's host.
func (h *Handler) CheckStatus(r *http.Request, id string) CheckStatusPayload {
	prefix := h.origin(r) + WebhookBase + "/instances/" + url.PathEscape(id)
	q := h.querySuffix()
	return CheckStatusPayload{
		ID:                    id,
		StatusQueryGetURI:     prefix + "?" + q,
		SendEventPostURI:      prefix + "/raiseEvent/{eventName}?" + q,
		TerminatePostURI:      prefix + "/terminate?reason={text}&" + q,
		PurgeHistoryDeleteURI: prefix + "?" + q,
		RestartPostURI:        prefix + "/restart?" + q,
		SuspendPostURI:        prefix + "/suspend?reason={text}&" + q,
		ResumePostURI:         prefix + "/resume?reason={text}&" + q,
	}
}

// ClientData is what a `durable-functions` DurableClient needs to be built
// outside the Functions host (its clientData), pointing at this server as
// seen by request r: URL templates under WebhookBase that carry the API key
// if there is one.
type ClientData struct {
	TaskHubName                   string            `json:"taskHubName"`
	CreationURLs                  map[string]string `json:"creationUrls"`
	ManagementURLs                map[string]string `json:"managementUrls"`
	BaseURL                       string            `json:"baseUrl"`
	RequiredQueryStringParameters string            `json:"requiredQueryStringParameters"`
}

// ClientDataFor returns the DurableClient configuration for origin (for
// example "http://127.0.0.1:7071").
func (h *Handler) ClientDataFor(origin string) ClientData {
	base := strings.TrimRight(origin, "/") + WebhookBase
	q := h.querySuffix()
	inst := base + "/instances/INSTANCEID"
	return ClientData{
		TaskHubName: h.opts.TaskHub,
		CreationURLs: map[string]string{
			"createNewInstancePostUri":          base + "/orchestrators/{functionName}[/{instanceId}]?" + q,
			"createAndWaitOnNewInstancePostUri": base + "/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&" + q,
		},
		ManagementURLs: map[string]string{
			"id":                    "INSTANCEID",
			"statusQueryGetUri":     inst + "?" + q,
			"sendEventPostUri":      inst + "/raiseEvent/{eventName}?" + q,
			"terminatePostUri":      inst + "/terminate?reason={text}&" + q,
			"rewindPostUri":         inst + "/rewind?reason={text}&" + q,
			"purgeHistoryDeleteUri": inst + "?" + q,
			"restartPostUri":        inst + "/restart?" + q,
			"suspendPostUri":        inst + "/suspend?reason={text}&" + q,
			"resumePostUri":         inst + "/resume?reason={text}&" + q,
		},
		BaseURL:                       base,
		RequiredQueryStringParameters: q,
	}
}
