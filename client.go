package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/durable-go/durable/actors"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
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
}

// DecodeOutput decodes the instance's JSON output into v.
func (s *Status) DecodeOutput(v any) error {
	if len(s.Output) == 0 {
		return fmt.Errorf("instance %s has no output (status %s)", s.InstanceID, s.RuntimeStatus)
	}
	return json.Unmarshal(s.Output, v)
}

// Client starts instances and reads their state.
type Client struct {
	rt *Runtime
}

// StartOption is an option of Client.Start.
type StartOption func(*startOptions)

type startOptions struct{ instanceID string }

// WithInstanceID starts the instance under a chosen id instead of a new
// UUID. Starting an id that is pending or running is ErrInstanceExists; a
// finished instance with that id is replaced.
func WithInstanceID(id string) StartOption {
	return func(o *startOptions) { o.instanceID = id }
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
	id := o.instanceID
	if id == "" {
		id = uuid.NewString()
	}
	if err := ValidateInstanceID(id); err != nil {
		return "", err
	}
	if _, ok := c.rt.reg.Orchestrator(orchestrator); !ok {
		return "", fmt.Errorf("start %q: %w", orchestrator, ErrOrchestratorNotRegistered)
	}
	payload, err := c.encodePayload(input)
	if err != nil {
		return "", fmt.Errorf("start %q: %w", orchestrator, err)
	}
	node, err := c.rt.runningNode()
	if err != nil {
		return "", err
	}
	err = node.StartInstance(ctx, actors.StartRequest{InstanceID: id, Name: orchestrator, Input: payload})
	if errors.Is(err, actors.ErrShuttingDown) {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	if err != nil {
		return "", err
	}
	return id, nil
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
		if b, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
	}
	if len(b) > c.rt.opts.MaxPayloadBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(b), c.rt.opts.MaxPayloadBytes)
	}
	return b, nil
}

func (c *Client) load(id string) (*persistence.InstanceRecord, error) {
	if err := ValidateInstanceID(id); err != nil {
		return nil, err
	}
	rec, err := c.rt.hub.Partition(c.rt.hub.PartitionOf(id)).LoadInstance(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, fmt.Errorf("instance %s: %w", id, ErrInstanceNotFound)
	}
	if errors.Is(err, persistence.ErrClosed) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, fmt.Errorf("load instance %s: %w", id, err)
	}
	return rec, nil
}

// Status returns the committed state of an instance, or ErrInstanceNotFound.
func (c *Client) Status(ctx context.Context, id string) (*Status, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rec := c.rt.waiters.finishedRecord(id); rec != nil {
		return statusFromRecord(rec), nil
	}
	rec, err := c.load(id)
	if err != nil {
		return nil, err
	}
	return statusFromRecord(rec), nil
}

func statusFromRecord(rec *persistence.InstanceRecord) *Status {
	st := &Status{
		InstanceID:    rec.ID,
		Name:          rec.Name,
		RuntimeStatus: RuntimeStatus(rec.Status.String()),
		Input:         rec.Input,
		Output:        rec.Output,
		CustomStatus:  rec.CustomStatus,
		CreatedAt:     rec.CreatedAt,
		LastUpdatedAt: rec.LastUpdatedAt,
	}
	if rec.Failure != nil {
		st.Failure = &FailureDetails{ErrorType: rec.Failure.ErrorType, Message: rec.Failure.Message, StackTrace: rec.Failure.StackTrace}
	}
	return st
}

// History returns the history events of the instance's current execution,
// in order (with AllExecutions, also those of earlier executions kept by
// continue-as-new's KeepHistory).
func (c *Client) History(ctx context.Context, id string, opts ...HistoryOption) ([]*history.Event, error) {
	var o historyOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec, err := c.load(id)
	if err != nil {
		return nil, err
	}
	first := rec.Generation
	if o.allExecutions {
		first = max(1, rec.HistoryFloor) // those below were dropped
	}
	var raw [][]byte
	for gen := first; gen <= rec.Generation; gen++ {
		part, err := c.rt.hub.Partition(c.rt.hub.PartitionOf(id)).LoadHistory(id, gen)
		if err != nil {
			return nil, fmt.Errorf("load history of %s: %w", id, err)
		}
		raw = append(raw, part...)
	}
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
func (c *Client) WaitForCompletion(ctx context.Context, id string) (*Status, error) {
	if rec := c.rt.waiters.finishedRecord(id); rec != nil {
		return statusFromRecord(rec), nil // no waiter to add and remove
	}
	ch := c.rt.waiters.add(id)
	st, err := c.Status(ctx, id)
	if err != nil || st.RuntimeStatus.IsTerminal() {
		c.rt.waiters.remove(id, ch)
		return st, err
	}
	select {
	case rec, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		return statusFromRecord(rec), nil
	case <-ctx.Done():
		c.rt.waiters.remove(id, ch)
		return nil, fmt.Errorf("wait for instance %s: %w", id, ctx.Err())
	}
}
