package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/internal/ids"
	"github.com/durable-go/durable/internal/jsonfast"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/seam"
)

// RuntimeStatus is the runtime status of an instance, spelled as in Durable
// Functions.
type RuntimeStatus string

// The runtime statuses.
const (
	StatusPending        RuntimeStatus = "Pending"
	StatusRunning        RuntimeStatus = "Running"
	StatusCompleted      RuntimeStatus = "Completed"
	StatusFailed         RuntimeStatus = "Failed"
	StatusTerminated     RuntimeStatus = "Terminated"
	StatusSuspended      RuntimeStatus = "Suspended"
	StatusContinuedAsNew RuntimeStatus = "ContinuedAsNew"
	StatusCanceled       RuntimeStatus = "Canceled"
)

// IsTerminal reports whether the status is final: Completed, Failed,
// Terminated or Canceled.
func (s RuntimeStatus) IsTerminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusTerminated, StatusCanceled:
		return true
	}
	return false
}

// FailureDetails says why an instance or a task failed.
type FailureDetails = orchestration.FailureDetails

// Status is the state of an instance as last committed.
type Status struct {
	InstanceID    string          `json:"instanceId"`
	Name          string          `json:"name"`
	RuntimeStatus RuntimeStatus   `json:"runtimeStatus"`
	Input         json.RawMessage `json:"input"`
	Output        json.RawMessage `json:"output"`
	CustomStatus  json.RawMessage `json:"customStatus"`
	Failure       *FailureDetails `json:"failureDetails,omitempty"`
	CreatedAt     time.Time       `json:"createdTime"`
	LastUpdatedAt time.Time       `json:"lastUpdatedTime"`
	// Version is the version of the orchestrator the instance runs, as
	// recorded when its execution started (empty: unversioned).
	Version string `json:"version,omitempty"`
	// VersionNotRegistered: the instance has not ended and the node that
	// serves it has no code for its name and Version, so it waits, as it
	// is on disk, until a node with that version registered serves it.
	VersionNotRegistered bool `json:"versionNotRegistered,omitempty"`
}

// DecodeOutput decodes the instance's JSON output into v.
func (s *Status) DecodeOutput(v any) error {
	if len(s.Output) == 0 {
		return fmt.Errorf("instance %s has no output (status %s)", s.InstanceID, s.RuntimeStatus)
	}
	return jsonfast.Unmarshal(s.Output, v)
}

// Client starts instances and reads their state.
type Client struct {
	rt *Runtime
}

// StartOption is an option of Client.Start.
type StartOption func(*startOptions)

type startOptions struct {
	instanceID  string
	version     *string
	traceParent string
}

// WithInstanceID starts the instance under a chosen id instead of a new
// UUID. Starting an id that is pending or running is ErrInstanceExists; a
// finished instance with that id is replaced.
func WithInstanceID(id string) StartOption {
	return func(o *startOptions) { o.instanceID = id }
}

// WithVersion starts the instance on version v of the orchestrator (see
// Version) instead of its default version. A version that is not
// registered is ErrOrchestratorNotRegistered.
func WithVersion(v string) StartOption {
	return func(o *startOptions) { o.version = &v }
}

// MaxInstanceIDLength is the longest instance id accepted.
const MaxInstanceIDLength = 256

// ValidateInstanceID checks an instance id against the rules of Durable
// Functions: 1 to 256 characters, no control characters, none of / \ # ?,
// not starting with @.
func ValidateInstanceID(id string) error {
	if id == "" || len(id) > MaxInstanceIDLength {
		return fmt.Errorf("%w: length must be 1..%d", ErrInvalidInstanceID, MaxInstanceIDLength)
	}
	if strings.HasPrefix(id, "@") {
		return fmt.Errorf("%w: %q starts with @", ErrInvalidInstanceID, id)
	}
	for _, r := range id {
		if unicode.IsControl(r) || strings.ContainsRune(`/\#?`, r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: %q contains %q", ErrInvalidInstanceID, id, r)
		}
	}
	return nil
}

// Start starts a new instance of the named orchestrator with input (encoded
// as JSON; a json.RawMessage is taken as it is) and returns its id once its
// creation is durable.
func (c *Client) Start(ctx context.Context, orchestrator string, input any, opts ...StartOption) (string, error) {
	var o startOptions
	for _, opt := range opts {
		opt(&o)
	}
	id, fresh := o.instanceID, false
	if id == "" {
		id, fresh = ids.NewString(), true
	}
	if err := ValidateInstanceID(id); err != nil {
		return "", err
	}
	if !c.rt.reg.startable(orchestrator) {
		return "", fmt.Errorf("start %q: %w", orchestrator, ErrOrchestratorNotRegistered)
	}
	if v := o.version; v != nil {
		if err := validateVersion(*v); err != nil {
			return "", fmt.Errorf("start %q: %w", orchestrator, err)
		}
		if _, ok := c.rt.reg.OrchestratorVersion(orchestrator, *v); !ok {
			return "", fmt.Errorf("start %q version %q: %w", orchestrator, *v, ErrOrchestratorNotRegistered)
		}
	}
	payload, err := c.encodePayload(input)
	if err != nil {
		return "", fmt.Errorf("start %q: %w", orchestrator, err)
	}
	_, err = c.call(ctx, &seam.Request{Op: &seam.Request_StartInstance{StartInstance: &seam.StartInstance{
		InstanceId: id, Name: orchestrator, Input: payload, Version: o.version, TraceParent: o.traceParent, FreshId: fresh,
	}}})
	if err != nil {
		return "", err
	}
	return id, nil
}

// call sends req to its partition through the seam. A write gets its
// idempotency key here, so every retry below the Client (the cluster's, a
// remote transport's) has one effect. A partition that is unavailable
// because this runtime is closing answers ErrClosed.
func (c *Client) call(ctx context.Context, req *seam.Request) (*seam.Response, error) {
	parts, err := c.rt.partitions()
	if err != nil {
		return nil, err
	}
	if seam.IsWrite(req) && req.IdempotencyKey == "" {
		req.IdempotencyKey = seam.NewIdempotencyKey()
	}
	resp, err := parts.Call(ctx, req)
	if errors.Is(err, seam.ErrUnavailable) && c.rt.isClosed() {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return resp, err
}

func (c *Client) encodePayload(v any) ([]byte, error) {
	var b []byte
	switch x := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if !json.Valid(x) {
			return nil, fmt.Errorf("%w: not valid JSON", ErrInvalidInput)
		}
		b = x
	default:
		var err error
		if b, err = jsonfast.Marshal(v); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
	}
	if len(b) > c.rt.opts.MaxPayloadBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(b), c.rt.opts.MaxPayloadBytes)
	}
	return b, nil
}

// Status returns the committed state of an instance, or ErrInstanceNotFound.
func (c *Client) Status(ctx context.Context, id string) (*Status, error) {
	if err := ValidateInstanceID(id); err != nil {
		return nil, err
	}
	resp, err := c.call(ctx, &seam.Request{Op: &seam.Request_GetInstance{GetInstance: &seam.GetInstance{InstanceId: id}}})
	if err != nil {
		return nil, err
	}
	return statusFromSeam(resp.GetInstance()), nil
}

// statusFromSeam is the Client's view of an instance's status.
func statusFromSeam(st *seam.InstanceStatus) *Status {
	return &Status{
		InstanceID:    st.GetInstanceId(),
		Name:          st.GetName(),
		RuntimeStatus: statusNames[st.GetRuntimeStatus()],
		Input:         rawOrNilJSON(st.GetInput()),
		Output:        rawOrNilJSON(st.GetOutput()),
		CustomStatus:  rawOrNilJSON(st.GetCustomStatus()),
		Failure:       failureFromSeam(st.GetFailure()),
		CreatedAt:     timeFromUnixNano(st.GetCreatedUnixNano()),
		LastUpdatedAt: timeFromUnixNano(st.GetLastUpdatedUnixNano()),

		Version:              st.GetVersion(),
		VersionNotRegistered: st.GetVersionNotRegistered(),
	}
}

func rawOrNilJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return b
}

// failureFromSeam keeps the whole chain of inner failures.
func failureFromSeam(f *seam.FailureDetails) *FailureDetails {
	if f == nil {
		return nil
	}
	return &FailureDetails{ErrorType: f.GetErrorType(), Message: f.GetMessage(), StackTrace: f.GetStackTrace(), Inner: failureFromSeam(f.GetInner())}
}

func timeFromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func unixNanoOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// statusNames spells the seam's statuses as the Client's.
var statusNames = map[seam.RuntimeStatus]RuntimeStatus{
	seam.RuntimeStatus_RUNTIME_STATUS_PENDING:          StatusPending,
	seam.RuntimeStatus_RUNTIME_STATUS_RUNNING:          StatusRunning,
	seam.RuntimeStatus_RUNTIME_STATUS_COMPLETED:        StatusCompleted,
	seam.RuntimeStatus_RUNTIME_STATUS_FAILED:           StatusFailed,
	seam.RuntimeStatus_RUNTIME_STATUS_TERMINATED:       StatusTerminated,
	seam.RuntimeStatus_RUNTIME_STATUS_SUSPENDED:        StatusSuspended,
	seam.RuntimeStatus_RUNTIME_STATUS_CONTINUED_AS_NEW: StatusContinuedAsNew,
	seam.RuntimeStatus_RUNTIME_STATUS_CANCELED:         StatusCanceled,
}

// seamStatus is the seam's status of a Client's status name
// (case-insensitive, as in Durable Functions' queries).
func seamStatus(s RuntimeStatus) (seam.RuntimeStatus, error) {
	for code, name := range statusNames {
		if strings.EqualFold(string(name), string(s)) {
			return code, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown instance status %q", ErrInvalidInput, s)
}

// History returns the history events of the instance's current execution,
// in order (with AllExecutions, also those of earlier executions kept by
// continue-as-new's KeepHistory).
func (c *Client) History(ctx context.Context, id string, opts ...HistoryOption) ([]*history.Event, error) {
	var o historyOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := ValidateInstanceID(id); err != nil {
		return nil, err
	}
	resp, err := c.call(ctx, &seam.Request{Op: &seam.Request_GetHistory{GetHistory: &seam.GetHistory{InstanceId: id, AllExecutions: o.allExecutions}}})
	if err != nil {
		return nil, err
	}
	raw := resp.GetHistoryEvents()
	events := make([]*history.Event, len(raw))
	for i, b := range raw {
		if events[i], err = history.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("history of %s, event %d: %w", id, i, err)
		}
	}
	if o.withoutPayloads {
		stripPayloads(events)
	}
	return events, nil
}

// WaitForCompletion blocks until the instance is Completed, Failed,
// Terminated or Canceled, and returns its final status, or until ctx ends.
// The wait is a subscription at the partition that owns the instance.
func (c *Client) WaitForCompletion(ctx context.Context, id string) (*Status, error) {
	if err := ValidateInstanceID(id); err != nil {
		return nil, err
	}
	for {
		resp, err := c.call(ctx, &seam.Request{Op: &seam.Request_WaitForInstance{WaitForInstance: &seam.WaitForInstance{InstanceId: id}}})
		if errors.Is(err, seam.ErrWaitExpired) && ctx.Err() == nil {
			continue // the partition ended the subscription early: subscribe again
		}
		if err != nil {
			return nil, err
		}
		return statusFromSeam(resp.GetInstance()), nil
	}
}
