package orchestration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/durable-go/durable/history"
)

// uuidNamespace scopes the name-based UUIDs of NewUUID.
var uuidNamespace = uuid.MustParse("9e952958-5e33-4daf-827f-2fa12937b875")

// Context is what orchestrator code sees of its instance. Its methods must be
// called only from the orchestrator's own goroutine.
type Context struct {
	e *Execution
}

// InstanceID returns the id of the instance.
func (c *Context) InstanceID() string { return c.e.instanceID }

// ExecutionID returns the id of the current execution of the instance.
func (c *Context) ExecutionID() string { return c.e.executionID }

// Name returns the orchestrator's registered name.
func (c *Context) Name() string { return c.e.name }

// Input decodes the instance's JSON input into v. With no input, v is left
// unchanged.
func (c *Context) Input(v any) error {
	if len(c.e.input) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.e.input, v); err != nil {
		return fmt.Errorf("decode input of instance %s: %w", c.e.instanceID, err)
	}
	return nil
}

// Now returns the time at which the current turn started, recorded in
// history: the same on every replay. Use it instead of time.Now.
func (c *Context) Now() time.Time { return c.e.now }

// NewUUID returns a UUID that is the same on every replay: name-based (SHA-1)
// from the instance id, the execution id and a counter. Use it instead of
// uuid.New.
func (c *Context) NewUUID() uuid.UUID {
	c.e.uuidCounter++
	name := c.e.instanceID + "/" + c.e.executionID + "/" + strconv.Itoa(c.e.uuidCounter)
	return uuid.NewSHA1(uuidNamespace, []byte(name))
}

// IsReplaying reports whether the code is re-running turns already recorded
// in history, after a restart. Side effects in orchestrator code (logging,
// metrics) should be skipped while it is true; Logger does so by itself.
func (c *Context) IsReplaying() bool { return c.e.replaying }

// Logger returns a logger that drops its records while the code is
// replaying, so each record is written once however often the code replays.
func (c *Context) Logger() *slog.Logger { return c.e.logger }

// SetCustomStatus sets the instance's custom status, visible in its status
// as JSON. A value that cannot be encoded gives an error and changes nothing.
func (c *Context) SetCustomStatus(v any) error {
	b, err := marshalPayload(v)
	if err != nil {
		return fmt.Errorf("marshal custom status: %w", err)
	}
	c.e.customStatus = b
	if c.e.turn != nil {
		c.e.turn.CustomStatusChanged = true
	}
	return nil
}

// CallActivity schedules the activity registered under name with input
// (encoded as JSON) and returns its task. The activity runs at least once;
// its result is recorded in history, so a replay does not run it again.
// A failure of the activity surfaces from Await as a *TaskFailedError.
func (c *Context) CallActivity(name string, input any) Task {
	e := c.e
	id := e.nextTaskID
	e.nextTaskID++
	t := &task{e: e, id: id, name: name}
	payload, err := marshalPayload(input)
	if err != nil {
		t.complete(nil, fmt.Errorf("marshal input of activity %q: %w", name, err))
		return t
	}
	ev := &history.Event{Type: history.TaskScheduled, TaskID: id, Name: name, Payload: payload}
	t.scheduled = ev
	e.open[id] = t
	e.schedule(ev)
	return t
}

// replaySafeHandler drops log records while the execution replays.
type replaySafeHandler struct {
	inner slog.Handler
	e     *Execution
}

func (h *replaySafeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !h.e.replaying && h.inner.Enabled(ctx, l)
}

func (h *replaySafeHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.e.replaying {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h *replaySafeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &replaySafeHandler{inner: h.inner.WithAttrs(attrs), e: h.e}
}

func (h *replaySafeHandler) WithGroup(name string) slog.Handler {
	return &replaySafeHandler{inner: h.inner.WithGroup(name), e: h.e}
}
