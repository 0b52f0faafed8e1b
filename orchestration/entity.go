package orchestration

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/internal/jsonfast"
)

// EntityID names a durable entity: its registered name (case-insensitive)
// and a key.
type EntityID struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// String is the entity's instance id, as Durable Functions spells it:
// "@name@key" with the name lower-cased.
func (id EntityID) String() string { return "@" + strings.ToLower(id.Name) + "@" + id.Key }

// ParseEntityID parses the "@name@key" form.
func ParseEntityID(s string) (EntityID, error) {
	rest, ok := strings.CutPrefix(s, "@")
	name, key, found := strings.Cut(rest, "@")
	if !ok || !found || name == "" {
		return EntityID{}, fmt.Errorf("invalid entity id %q: want @name@key", s)
	}
	return EntityID{Name: name, Key: key}, nil
}

// EntityFunc is a durable entity: it runs one operation (ctx.Operation())
// against the entity's state. Operations of one entity run one at a time,
// in arrival order. A returned error (or a panic) rolls back the
// operation's state change and its outgoing signals, and is reported to a
// caller; the entity goes on.
type EntityFunc func(ctx *EntityContext) error

// EntityContext is what entity code sees of one operation.
type EntityContext struct {
	id        EntityID
	op        string
	input     []byte
	state     []byte
	hasState  bool
	result    []byte
	signals   []EntitySignal
	starts    []OrchestrationStart
	newUUIDFn func() string
}

// EntitySignal is a signal an entity operation sends.
type EntitySignal struct {
	Target    EntityID
	Operation string
	Input     []byte
	At        time.Time // zero: now
}

// OrchestrationStart is an orchestration an entity operation starts.
type OrchestrationStart struct {
	Name       string
	InstanceID string
	Input      []byte
}

// EntityID returns the entity's id.
func (c *EntityContext) EntityID() EntityID { return c.id }

// Operation returns the name of the operation to run.
func (c *EntityContext) Operation() string { return c.op }

// Input decodes the operation's JSON input into v (left unchanged if none).
func (c *EntityContext) Input(v any) error {
	if len(c.input) == 0 {
		return nil
	}
	if err := jsonfast.Unmarshal(c.input, v); err != nil {
		return fmt.Errorf("decode input of operation %q on %s: %w", c.op, c.id, err)
	}
	return nil
}

// HasState reports whether the entity has state.
func (c *EntityContext) HasState() bool { return c.hasState }

// GetState decodes the entity's state into v (left unchanged if none).
func (c *EntityContext) GetState(v any) error {
	if !c.hasState || len(c.state) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.state, v); err != nil {
		return fmt.Errorf("decode state of %s: %w", c.id, err)
	}
	return nil
}

// SetState replaces the entity's state with v (encoded as JSON).
func (c *EntityContext) SetState(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode state of %s: %w", c.id, err)
	}
	c.state, c.hasState = b, true
	return nil
}

// DeleteState removes the entity's state: the entity no longer exists
// until an operation sets state again.
func (c *EntityContext) DeleteState() { c.state, c.hasState = nil, false }

// Return sets the operation's result, which a caller receives.
func (c *EntityContext) Return(v any) error {
	b, err := marshalPayload(v)
	if err != nil {
		return fmt.Errorf("encode result of operation %q on %s: %w", c.op, c.id, err)
	}
	c.result = b
	return nil
}

// SignalEntity sends a one-way operation to another entity once this
// operation commits (at the given time with SignalAt).
func (c *EntityContext) SignalEntity(target EntityID, op string, input any, opts ...SignalOption) error {
	b, err := marshalPayload(input)
	if err != nil {
		return fmt.Errorf("encode input of signal %q to %s: %w", op, target, err)
	}
	var o signalOptions
	for _, opt := range opts {
		opt(&o)
	}
	c.signals = append(c.signals, EntitySignal{Target: target, Operation: op, Input: b, At: o.at})
	return nil
}

// StartOrchestration starts an orchestration once this operation commits
// and returns its instance id.
func (c *EntityContext) StartOrchestration(name string, input any) (string, error) {
	b, err := marshalPayload(input)
	if err != nil {
		return "", fmt.Errorf("encode input of orchestration %q: %w", name, err)
	}
	id := c.newUUIDFn()
	c.starts = append(c.starts, OrchestrationStart{Name: name, InstanceID: id, Input: b})
	return id, nil
}

// EntityOutcome is what one entity operation did.
type EntityOutcome struct {
	// State is the entity's state after the operation (HasState false: no
	// state). On failure it is the state before: the change is rolled back.
	State    []byte
	HasState bool
	Result   []byte
	Failure  *FailureDetails
	Signals  []EntitySignal
	Starts   []OrchestrationStart
}

// RunEntityOperation runs one operation of fn against state, recovering a
// panic into a failure. newUUID makes the ids of started orchestrations.
func RunEntityOperation(fn EntityFunc, id EntityID, op string, input, state []byte, hasState bool, newUUID func() string) (out EntityOutcome) {
	ctx := &EntityContext{id: id, op: op, input: input, state: state, hasState: hasState, newUUIDFn: newUUID}
	defer func() {
		if r := recover(); r != nil {
			out = EntityOutcome{State: state, HasState: hasState, Failure: &FailureDetails{
				ErrorType: ErrorTypePanic, Message: fmt.Sprint(r), StackTrace: string(debug.Stack()),
			}}
		}
	}()
	if err := fn(ctx); err != nil {
		f := &FailureDetails{ErrorType: fmt.Sprintf("%T", err), Message: err.Error()}
		if t, ok := err.(interface{ ErrorType() string }); ok {
			f.ErrorType = t.ErrorType()
		}
		return EntityOutcome{State: state, HasState: hasState, Failure: f}
	}
	return EntityOutcome{State: ctx.state, HasState: ctx.hasState, Result: ctx.result, Signals: ctx.signals, Starts: ctx.starts}
}

// ErrUnknownOperation is the error of an operation a struct entity has no
// method for.
var ErrUnknownOperation = errors.New("unknown entity operation")

var entityContextType = reflect.TypeFor[*EntityContext]()

// EntityFromStruct makes an entity from a struct type: the entity's state is
// a T (JSON), and each exported method of *T is an operation, matched by
// name case-insensitively. A method may take an optional *EntityContext
// first and an optional input, and return an optional result and an
// optional error:
//
//	func (c *Counter) Add(n int)
//	func (c *Counter) Get() int
//	func (a *Account) Withdraw(ctx *orchestration.EntityContext, amount int) error
//
// The operation "delete" (without such a method) deletes the state.
func EntityFromStruct[T any]() (EntityFunc, error) {
	typ := reflect.TypeFor[*T]()
	if typ.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("EntityFromStruct: %s is not a struct", typ.Elem())
	}
	methods := map[string]reflect.Method{}
	for i := 0; i < typ.NumMethod(); i++ {
		m := typ.Method(i)
		mt := m.Type // receiver first
		in := 1
		if mt.NumIn() > in && mt.In(in) == entityContextType {
			in++
		}
		if mt.NumIn() > in+1 || mt.IsVariadic() {
			return nil, fmt.Errorf("EntityFromStruct: method %s takes too many arguments", m.Name)
		}
		if mt.NumOut() > 2 || (mt.NumOut() == 2 && mt.Out(1) != errorType) {
			return nil, fmt.Errorf("EntityFromStruct: method %s must return ([result][, error])", m.Name)
		}
		methods[strings.ToLower(m.Name)] = m
	}
	return func(ctx *EntityContext) error {
		m, ok := methods[strings.ToLower(ctx.op)]
		if !ok {
			if strings.EqualFold(ctx.op, "delete") {
				ctx.DeleteState()
				return nil
			}
			return fmt.Errorf("%w %q on %s", ErrUnknownOperation, ctx.op, ctx.id)
		}
		self := reflect.New(typ.Elem())
		if err := ctx.GetState(self.Interface()); err != nil {
			return err
		}
		args := []reflect.Value{self}
		mt := m.Type
		if mt.NumIn() > 1 && mt.In(1) == entityContextType {
			args = append(args, reflect.ValueOf(ctx))
		}
		if mt.NumIn() > len(args) {
			in := reflect.New(mt.In(len(args)))
			if err := ctx.Input(in.Interface()); err != nil {
				return err
			}
			args = append(args, in.Elem())
		}
		out := m.Func.Call(args)
		if n := len(out); n > 0 && mt.Out(n-1) == errorType {
			if err, _ := out[n-1].Interface().(error); err != nil {
				return err
			}
			out = out[:n-1]
		}
		if len(out) == 1 {
			if err := ctx.Return(out[0].Interface()); err != nil {
				return err
			}
		}
		if ctx.hasState || !strings.EqualFold(ctx.op, "delete") {
			return ctx.SetState(self.Interface())
		}
		return nil
	}, nil
}

var errorType = reflect.TypeFor[error]()

// SignalOption is an option of a signal.
type SignalOption func(*signalOptions)

type signalOptions struct{ at time.Time }

// SignalAt delivers the signal at t instead of now.
func SignalAt(t time.Time) SignalOption { return func(o *signalOptions) { o.at = t } }

// CallEntity calls operation op of entity id with input and returns a task
// that completes with the operation's result (recorded in history, so a
// replay does not call again). Inside a critical section only the locked
// entities may be called.
func (c *Context) CallEntity(id EntityID, op string, input any) Task {
	e := c.e
	target := id.String()
	payload, err := marshalPayload(input)
	if err != nil {
		return e.failedTask("entity call", target+"."+op, fmt.Errorf("marshal input of entity call %q on %s: %w", op, target, err))
	}
	if e.locks != nil && !e.locks[target] {
		return e.failedTask("entity call", target+"."+op, fmt.Errorf("entity call %q on %s: %w", op, target, ErrNotLocked))
	}
	taskID := e.nextTaskID
	e.nextTaskID++
	t := &taskState{e: e, kind: "entity call", name: target + "." + op, id: taskID}
	ev := &history.Event{Type: history.EntityOperationCalled, TaskID: taskID, Name: op, InstanceID: target, Payload: payload}
	e.open[taskID] = &openTask{t: t, name: t.name, scheduled: ev}
	e.schedule(ev)
	return t
}

// SignalEntity sends operation op with input to entity id, one way. It is
// sent durably with this turn's commit (at the time given by SignalAt).
func (c *Context) SignalEntity(id EntityID, op string, input any, opts ...SignalOption) error {
	e := c.e
	payload, err := marshalPayload(input)
	if err != nil {
		return fmt.Errorf("marshal input of signal %q to %s: %w", op, id, err)
	}
	var o signalOptions
	for _, opt := range opts {
		opt(&o)
	}
	taskID := e.nextTaskID
	e.nextTaskID++
	ev := &history.Event{Type: history.EntityOperationSignaled, TaskID: taskID, Name: op, InstanceID: id.String(), Payload: payload}
	if !o.at.IsZero() {
		ev.FireAt = o.at.UTC()
	}
	e.schedule(ev)
	return nil
}

// ErrNotLocked is the error of calling, inside a critical section, an
// entity the section has not locked.
var ErrNotLocked = errors.New("entity is not locked by this critical section")

// ErrAlreadyLocked is the error of entering a critical section inside
// another one.
var ErrAlreadyLocked = errors.New("already in a critical section")

// CriticalSection is a set of entities locked by one orchestration: other
// callers' operations on them wait until Release (or the end of the
// orchestration, whatever its outcome).
type CriticalSection struct {
	e   *Execution
	ids []string
}

// LockEntities locks the entities (in one global order, so two
// orchestrations locking overlapping sets cannot deadlock) and blocks until
// all are held.
func (c *Context) LockEntities(ids ...EntityID) (*CriticalSection, error) {
	e := c.e
	if e.locks != nil || e.lockPending {
		return nil, ErrAlreadyLocked
	}
	if len(ids) == 0 {
		return nil, errors.New("lock entities: no entity given")
	}
	set := map[string]bool{}
	for _, id := range ids {
		set[id.String()] = true
	}
	sorted := make([]string, 0, len(set))
	for id := range set {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	payload, _ := json.Marshal(sorted)
	taskID := e.nextTaskID
	e.nextTaskID++
	t := &taskState{e: e, kind: "lock", id: taskID}
	ev := &history.Event{Type: history.EntityLockRequested, TaskID: taskID, Payload: payload}
	e.open[taskID] = &openTask{t: t, name: "lock", scheduled: ev}
	e.lockPending = true
	e.schedule(ev)
	err := t.Await(nil)
	e.lockPending = false
	if err != nil {
		return nil, err
	}
	e.locks = set
	e.lockOrder = sorted
	return &CriticalSection{e: e, ids: sorted}, nil
}

// Release unlocks the section's entities. Safe to call more than once.
func (cs *CriticalSection) Release() {
	if cs.e.locks == nil {
		return
	}
	cs.e.releaseLocks(false)
}

// HeldLocks returns the entity ids the execution holds locked (nil if
// none): when the instance ends from outside they must be released.
func (e *Execution) HeldLocks() []string { return e.lockOrder }

// releaseLocks records the release of the held locks; direct is used when
// the engine itself ends the execution (the event is then new even while
// replaying).
func (e *Execution) releaseLocks(direct bool) {
	if e.locks == nil {
		return
	}
	payload, _ := json.Marshal(e.lockOrder)
	taskID := e.nextTaskID
	e.nextTaskID++
	ev := &history.Event{Type: history.EntityUnlockSent, TaskID: taskID, Payload: payload}
	e.locks, e.lockOrder = nil, nil
	if direct {
		e.emit(ev)
		e.turn.Actions = append(e.turn.Actions, ev)
		return
	}
	e.schedule(ev)
}
