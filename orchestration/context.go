package orchestration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/internal/jsonfast"
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

// Version returns the version of the orchestrator this execution runs, as
// recorded when it started: empty for an unversioned orchestrator.
func (c *Context) Version() string { return c.e.version }

// Input decodes the instance's JSON input into v. With no input, v is left
// unchanged.
func (c *Context) Input(v any) error {
	if len(c.e.input) == 0 {
		return nil
	}
	if err := jsonfast.Unmarshal(c.e.input, v); err != nil {
		return fmt.Errorf("decode input of instance %s: %w", c.e.instanceID, err)
	}
	return nil
}

// OptionalInput decodes the instance's JSON input into v, like Input, for
// an orchestrator whose input may be left out. No input, JSON null and the
// empty JSON string "" all mean "no input": v is left unchanged and
// OptionalInput reports false. (The Durable Functions JavaScript client
// sends "" for a start without input, and an HTTP caller may send null.)
func (c *Context) OptionalInput(v any) (bool, error) {
	switch string(bytes.TrimSpace(c.e.input)) {
	case "", "null", `""`:
		return false, nil
	}
	return true, c.Input(v)
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
func (c *Context) Logger() *slog.Logger {
	e := c.e
	if e.logger == nil {
		e.logger = slog.New(&replaySafeHandler{inner: e.baseLogger.Handler(), e: e}).With("instanceId", e.instanceID)
	}
	return e.logger
}

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
// WithRetry retries it on failure, waiting on durable timers in between.
func (c *Context) CallActivity(name string, input any, opts ...CallOption) Task {
	e := c.e
	o := collectCallOptions(opts)
	payload, err := marshalPayload(input)
	if err != nil {
		return e.failedTask("activity", name, fmt.Errorf("marshal input of activity %q: %w", name, err))
	}
	if o.retry == nil {
		return e.scheduleActivity(name, payload, 0)
	}
	return e.withRetry(o.retry, "activity", name, func(attempt int32) *taskState {
		return e.scheduleActivity(name, payload, attempt)
	})
}

// CallSubOrchestrator starts the orchestrator registered under name as a
// child instance with input and returns a task that completes with the
// child's output. The child's id is WithInstanceID's, or one derived from
// this instance's id, execution and the task's number, so a replay finds
// the same child. A failure of the child surfaces as a *TaskFailedError.
func (c *Context) CallSubOrchestrator(name string, input any, opts ...CallOption) Task {
	e := c.e
	o := collectCallOptions(opts)
	payload, err := marshalPayload(input)
	if err != nil {
		return e.failedTask("sub-orchestration", name, fmt.Errorf("marshal input of sub-orchestration %q: %w", name, err))
	}
	call := func(attempt int32) *taskState {
		id := e.nextTaskID
		e.nextTaskID++
		child := o.instanceID
		if child == "" {
			exec := e.executionID
			if len(exec) > 8 {
				exec = exec[:8]
			}
			child = e.instanceID + ":" + exec + ":" + strconv.FormatInt(id, 10)
		}
		t := &taskState{e: e, kind: "sub-orchestration", name: name, id: id}
		ev := &history.Event{Type: history.SubOrchestrationCreated, TaskID: id, Name: name, InstanceID: child, Payload: payload, Attempt: attempt}
		e.open[id] = &openTask{t: t, name: name, scheduled: ev}
		e.schedule(ev)
		return t
	}
	if o.retry == nil {
		return call(0)
	}
	return e.withRetry(o.retry, "sub-orchestration", name, call)
}

// CreateTimer returns a task that completes d after the current turn's time.
// The timer is durable: it fires after a restart too (at once if it is
// already due), and a waiting instance holds no goroutine.
func (c *Context) CreateTimer(d time.Duration) Task {
	return c.e.scheduleTimer(c.e.now.Add(d))
}

// CreateTimerAt returns a task that completes at the given time.
func (c *Context) CreateTimerAt(at time.Time) Task {
	return c.e.scheduleTimer(at)
}

// WaitForExternalEvent returns a task that completes with the payload of
// the next external event named name (case-insensitive) raised to this
// instance. Events raised before the code waits for them are buffered in
// arrival order, per name.
//
// With WithTimeout, the wait ends after the given time (a durable timer)
// if no event came: its Await returns an error wrapping ErrTimeout, and the
// wait is withdrawn, so a later event of that name goes to the next wait
// (or is buffered for it). Without a timeout a wait cannot be withdrawn: a
// task that lost a WhenAny race still takes the next event of its name; to
// wait again, keep awaiting the same task rather than creating a new one.
func (c *Context) WaitForExternalEvent(name string, opts ...WaitOption) Task {
	var o waitOptions
	for _, opt := range opts {
		opt(&o)
	}
	e := c.e
	t := &taskState{e: e, kind: "external event", name: name, id: -1}
	if ev := e.takeBuffered(name); ev != nil {
		t.complete(ev.Payload, nil)
		return t
	}
	key := strings.ToLower(name)
	if e.eventWaiters == nil {
		e.eventWaiters = make(map[string][]*taskState)
	}
	e.eventWaiters[key] = append(e.eventWaiters[key], t)
	if o.timeout != nil {
		after := *o.timeout
		timer := e.scheduleTimer(e.now.Add(after))
		timer.onDone(func() {
			if t.done {
				return // the event came first
			}
			e.withdrawWaiter(key, t)
			t.complete(nil, &TimeoutError{Event: name, After: after})
		})
	}
	return t
}

// WaitOption is an option of WaitForExternalEvent.
type WaitOption func(*waitOptions)

type waitOptions struct {
	timeout *time.Duration
}

// WithTimeout makes a wait for an external event end after d (measured on
// the orchestration's clock, with a durable timer) if no event came.
func WithTimeout(d time.Duration) WaitOption {
	return func(o *waitOptions) { o.timeout = &d }
}

// ErrTimeout is wrapped by the error of a wait that timed out.
var ErrTimeout = errors.New("timed out")

// TimeoutError is the error of a wait for an external event that ended
// with WithTimeout's time and no event.
type TimeoutError struct {
	Event string
	After time.Duration
}

// Error names the event and the time waited.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("external event %q: no event within %v: %v", e.Event, e.After, ErrTimeout)
}

// Unwrap makes errors.Is(err, ErrTimeout) hold.
func (e *TimeoutError) Unwrap() error { return ErrTimeout }

// ContinueAsNew makes the instance restart, once the orchestrator returns,
// as a new execution with input and a fresh history. External events
// received but not consumed yet are carried over to the new execution. The
// orchestrator should return right after calling it; its return value is
// then ignored (an error still fails the instance).
func (c *Context) ContinueAsNew(input any, opts ...ContinueAsNewOption) error {
	b, err := marshalPayload(input)
	if err != nil {
		return fmt.Errorf("marshal input of continue-as-new: %w", err)
	}
	can := &continueAsNew{input: b}
	for _, o := range opts {
		o(can)
	}
	c.e.continueAsNew = can
	return nil
}

type continueAsNew struct {
	input          []byte
	keepHistory    bool
	defaultVersion bool
}

// ContinueAsNewOption is an option of ContinueAsNew.
type ContinueAsNewOption func(*continueAsNew)

// KeepHistory keeps the ended execution's history in the store (it is
// dropped by default). Purging the instance removes it.
func KeepHistory() ContinueAsNewOption {
	return func(c *continueAsNew) { c.keepHistory = true }
}

// OnDefaultVersion runs the next execution on the orchestrator's default
// version at the time it starts (the version new instances get), instead
// of the version this execution runs. It is how a long-lived instance (an
// eternal monitor) moves to new code: each execution replays only its own
// history, so the new version never meets the old version's events.
func OnDefaultVersion() ContinueAsNewOption {
	return func(c *continueAsNew) { c.defaultVersion = true }
}

// CallOption is an option of CallActivity and CallSubOrchestrator.
type CallOption func(*callOptions)

type callOptions struct {
	retry      *RetryPolicy
	instanceID string
}

func collectCallOptions(opts []CallOption) callOptions {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithRetry retries the call on failure according to p.
func WithRetry(p RetryPolicy) CallOption {
	return func(o *callOptions) { o.retry = &p }
}

// WithInstanceID chooses the instance id of a sub-orchestration.
func WithInstanceID(id string) CallOption {
	return func(o *callOptions) { o.instanceID = id }
}

func (e *Execution) failedTask(kind, name string, err error) *taskState {
	t := &taskState{e: e, kind: kind, name: name, id: -1}
	t.complete(nil, err)
	return t
}

func (e *Execution) scheduleActivity(name string, payload []byte, attempt int32) *taskState {
	id := e.nextTaskID
	e.nextTaskID++
	t := &taskState{e: e, kind: "activity", name: name, id: id}
	ev := &history.Event{Type: history.TaskScheduled, TaskID: id, Name: name, Payload: payload, Attempt: attempt}
	e.open[id] = &openTask{t: t, name: name, scheduled: ev}
	e.schedule(ev)
	return t
}

func (e *Execution) scheduleTimer(at time.Time) *taskState {
	id := e.nextTaskID
	e.nextTaskID++
	t := &taskState{e: e, kind: "timer", id: id}
	ev := &history.Event{Type: history.TimerCreated, TaskID: id, FireAt: at.UTC()}
	e.open[id] = &openTask{t: t, name: "timer", scheduled: ev}
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
