package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/seam"
)

// More errors callers can test with errors.Is (declared in package seam).
var (
	// ErrInstanceCompleted: the operation needs a live instance and this
	// one has completed, failed or been terminated.
	ErrInstanceCompleted = seam.ErrInstanceCompleted
	// ErrInstanceNotCompleted: purging needs a finished instance.
	ErrInstanceNotCompleted = seam.ErrInstanceNotCompleted
	// ErrNotFailed: only a failed instance can be rewound.
	ErrNotFailed = seam.ErrNotFailed
)

// RaiseEvent sends the external event name with payload (encoded as JSON) to
// an instance, and returns once it is recorded durably in the instance's
// history. Events the instance is not waiting for yet are buffered in order.
// An unknown instance gives ErrInstanceNotFound, a finished one
// ErrInstanceCompleted.
func (c *Client) RaiseEvent(ctx context.Context, id, name string, payload any) error {
	if name == "" {
		return fmt.Errorf("%w: empty event name", ErrInvalidInput)
	}
	if err := ValidateInstanceID(id); err != nil {
		return err
	}
	b, err := c.encodePayload(payload)
	if err != nil {
		return fmt.Errorf("raise event %q: %w", name, err)
	}
	_, err = c.call(ctx, &seam.Request{Op: &seam.Request_RaiseEvent{RaiseEvent: &seam.RaiseEvent{InstanceId: id, Name: name, Payload: b}}})
	return err
}

func (c *Client) control(ctx context.Context, id string, op seam.ControlOp, reason string) error {
	if err := ValidateInstanceID(id); err != nil {
		return err
	}
	_, err := c.call(ctx, &seam.Request{Op: &seam.Request_ControlInstance{ControlInstance: &seam.ControlInstance{InstanceId: id, Op: op, Reason: reason}}})
	return err
}

// Terminate ends a pending, running or suspended instance with status
// Terminated and reason as its output. Its pending activities, timers and
// events are dropped, and running activities see their context canceled
// (their results are discarded). Terminating a parent does not terminate its
// sub-orchestrations: they run on, and their results are dropped.
func (c *Client) Terminate(ctx context.Context, id, reason string) error {
	return c.control(ctx, id, seam.ControlOp_CONTROL_OP_TERMINATE, reason)
}

// Suspend pauses an instance: events and results that arrive are recorded
// but not delivered to its code until Resume. Suspending a suspended
// instance does nothing.
func (c *Client) Suspend(ctx context.Context, id, reason string) error {
	return c.control(ctx, id, seam.ControlOp_CONTROL_OP_SUSPEND, reason)
}

// Resume continues a suspended instance, delivering what arrived meanwhile
// in order. Resuming a running instance does nothing.
func (c *Client) Resume(ctx context.Context, id, reason string) error {
	return c.control(ctx, id, seam.ControlOp_CONTROL_OP_RESUME, reason)
}

// Rewind re-runs a failed instance from its first failed task: the results
// of the tasks that succeeded are kept (they do not run again), the failed
// tasks and everything the code did after them run again.
func (c *Client) Rewind(ctx context.Context, id, reason string) error {
	return c.control(ctx, id, seam.ControlOp_CONTROL_OP_REWIND, reason)
}

// Purge deletes a finished instance: its record, history and indexes. A
// pending, running or suspended instance gives ErrInstanceNotCompleted.
func (c *Client) Purge(ctx context.Context, id string) error {
	return c.control(ctx, id, seam.ControlOp_CONTROL_OP_PURGE, "")
}

// PurgeFilter selects the instances PurgeBy deletes.
type PurgeFilter struct {
	// CreatedFrom and CreatedTo bound the creation time (inclusive; zero
	// means unbounded).
	CreatedFrom, CreatedTo time.Time
	// Statuses keeps instances in these statuses; empty means Completed,
	// Failed, Terminated and Canceled. Only finished instances are purged.
	Statuses []RuntimeStatus
}

// PurgeBy deletes every finished instance that matches f and returns how
// many it deleted. With a partition down, the others are purged and the
// error (ErrPartitionDown) names the one that was not, with the count of
// those that were.
func (c *Client) PurgeBy(ctx context.Context, f PurgeFilter) (int, error) {
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []RuntimeStatus{StatusCompleted, StatusFailed, StatusTerminated, StatusCanceled}
	}
	for _, s := range statuses {
		if !s.IsTerminal() {
			return 0, fmt.Errorf("%w: cannot purge instances in status %s", ErrInvalidInput, s)
		}
	}
	filter, err := seamFilter(statuses, f.CreatedFrom, f.CreatedTo)
	if err != nil {
		return 0, err
	}
	answers, _, err := c.eachPartition(ctx, false, func(p int32) *seam.Request {
		return &seam.Request{Op: &seam.Request_PurgeInstances{PurgeInstances: &seam.PurgeInstances{Partition: p, Filter: filter}}}
	})
	deleted := 0
	for _, resp := range answers {
		deleted += int(resp.GetPurged())
	}
	return deleted, err
}

// Restart starts the orchestrator of an existing instance again with its
// original input: under a new id if newInstanceID, else under the same id
// (which must have finished). It returns the id that runs.
func (c *Client) Restart(ctx context.Context, id string, newInstanceID bool) (string, error) {
	st, err := c.Status(ctx, id)
	if err != nil {
		return "", err
	}
	var opts []StartOption
	if !newInstanceID {
		opts = append(opts, WithInstanceID(id))
	}
	return c.Start(ctx, st.Name, rawOrNil(st.Input), opts...)
}

func rawOrNil(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// HistoryOption is an option of Client.History.
type HistoryOption func(*historyOptions)

type historyOptions struct{ withoutPayloads, allExecutions bool }

// AllExecutions includes the histories of the earlier executions that
// continue-as-new kept (orchestration.KeepHistory), oldest first.
func AllExecutions() HistoryOption {
	return func(o *historyOptions) { o.allExecutions = true }
}

// WithoutPayloads leaves inputs, outputs and event payloads out of the
// history (names, types, ids and times stay).
func WithoutPayloads() HistoryOption {
	return func(o *historyOptions) { o.withoutPayloads = true }
}

func stripPayloads(events []*history.Event) {
	for _, ev := range events {
		ev.Payload = nil
	}
}
