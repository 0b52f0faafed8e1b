package orchestration

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/internal/jsonfast"
)

// Orchestrator is an orchestrator function. It must be deterministic: all it
// observes must come from ctx (input, results, Now, NewUUID). Its result is
// encoded as JSON and becomes the instance's output; an error fails the
// instance.
type Orchestrator func(ctx *Context) (any, error)

// Turn is what one Replay or Apply asks the caller to do.
type Turn struct {
	// Events are the new history events, in order: the input events handed
	// to Apply, interleaved with the events the code produced. Append them to
	// the history in one transaction with the status they imply.
	Events []*history.Event
	// Actions are the events of Events that ask for work outside the
	// instance (TaskScheduled, ...). Dispatch them only after the commit.
	Actions []*history.Event
	// Done is true when the execution has ended; Output or Failure is set.
	Done    bool
	Output  []byte
	Failure *FailureDetails
	// CustomStatus is the custom status at the end of the turn (JSON) and
	// CustomStatusChanged whether the code set it during the turn.
	CustomStatus        []byte
	CustomStatusChanged bool
	// Suspended is true while the execution is suspended: events that
	// arrive are recorded but not delivered to the code until it resumes.
	Suspended bool
	// ContinuedAsNew is true when the code ended with ContinueAsNew: the
	// instance must restart with NewInput and a fresh history, receiving
	// CarryOver (external events not consumed yet) first. KeepHistory asks
	// to keep the old history.
	ContinuedAsNew bool
	NewInput       []byte
	CarryOver      []*history.Event
	KeepHistory    bool
	// DefaultVersion asks for the next execution to run the orchestrator's
	// default version instead of the version this one ran
	// (OnDefaultVersion).
	DefaultVersion bool
}

// Execution is the in-memory state of one execution of an orchestrator: the
// code, suspended where it awaits, and the tasks it waits for. It is driven
// by a single caller; it is not safe for concurrent use.
type Execution struct {
	instanceID, executionID string
	fn                      Orchestrator
	baseLogger              *slog.Logger
	logger                  *slog.Logger // made on first use
	ctx                     *Context
	ctxValue                Context // what ctx points to: one allocation with the execution

	name      string
	version   string
	input     []byte
	now       time.Time
	replaying bool
	position  int // history index of the next event
	turn      *Turn

	nextTaskID  int64
	uuidCounter int
	open        map[int64]*openTask   // scheduled and not yet completed
	unmatched   map[int64]askedAction // actions asked for while replaying, not yet found in history

	// While replaying: the events of the running Replay call (the first at
	// history position replayBase), and cursor, the position at which the
	// action the code asks for next was recorded. A code run triggered by
	// the event at position p records its actions at p+1, p+2, ... (Apply
	// emits them right after the event), so cursor starts at p+1 and each
	// action asked for moves it on. IsPatched reads the marker there.
	replayEvents []*history.Event
	replayBase   int
	cursor       int

	// Patches: each name's answer, decided on the first ask and kept for
	// the execution; and, while replaying, the positions of the recorded
	// markers the code asked for that replay has not reached yet.
	patches map[string]bool
	patchAt []int

	// External events: those received and not yet consumed, in arrival
	// order, and the code's waits not yet satisfied, by lower-cased name.
	buffered     []*history.Event
	eventWaiters map[string][]*taskState

	suspended bool
	held      []*history.Event // deliveries received while suspended

	continueAsNew *continueAsNew // set by ContinueAsNew, acted on when the code returns

	// Critical section: the locked entity ids, in lock order.
	locks       map[string]bool
	lockOrder   []string
	lockPending bool

	// The coroutine. Control passes engine -> code on resume (false) and
	// back on yield; resume true (Close) makes the code's goroutine exit
	// wherever it is blocked, and its last yield says it is gone. Plain
	// sends and receives on two channels, no select: a turn passes control
	// twice. (The flags sit together so that the struct stays in a smaller
	// allocation size class: one Execution is made per activation.)
	started  bool
	running  bool // the code's goroutine has control (set by the engine around each run)
	returned bool // the code returned (or panicked); result below
	done     bool // the execution ended: output or failure below
	closing  bool // Close was called: the code's goroutine is told to exit
	gone     bool // the code's goroutine has exited (set by it before its last yield)
	resume   chan bool
	yield    chan struct{}
	waiting  *taskState
	// siteWanted, set by blockedSite, asks the code's goroutine blocked in
	// a wait to write there the stack of the call it waits in.
	siteWanted *callers
	halted     error // a non-determinism the code's goroutine found itself; the engine fails with it
	result     any
	err        error
	panicked   *FailureDetails

	pendingCompletion *history.Event       // completion asked for while replaying
	nonDeterminism    *NonDeterminismError // what ended the execution, if a mismatch did
	output            []byte
	failure           *FailureDetails
	customStatus      []byte
}

// NewExecution prepares an execution of fn for the given instance. Nothing
// runs until the ExecutionStarted event is replayed or applied. logger
// receives the records of Context.Logger (nil means slog.Default()).
func NewExecution(instanceID, executionID string, fn Orchestrator, logger *slog.Logger) *Execution {
	if logger == nil {
		logger = slog.Default()
	}
	e := &Execution{
		instanceID:  instanceID,
		executionID: executionID,
		fn:          fn,
		open:        make(map[int64]*openTask),
		resume:      make(chan bool),
		yield:       make(chan struct{}),
	}
	e.baseLogger = logger
	e.ctxValue.e = e
	e.ctx = &e.ctxValue
	return e
}

// Done reports whether the execution has ended.
func (e *Execution) Done() bool { return e.done }

// IsOpen reports whether taskID names a task that was scheduled and has not
// completed yet. Callers use it to drop duplicate or stray results.
func (e *Execution) IsOpen(taskID int64) bool {
	_, ok := e.open[taskID]
	return ok
}

// NonDeterminism returns the mismatch between code and history that ended
// the execution (the details its failure only spells out as text), or nil
// when none did. Replay checks (package durabletest) report it as it is.
func (e *Execution) NonDeterminism() *NonDeterminismError { return e.nonDeterminism }

// Position returns the history index of the next event: after a Replay
// that ended the execution itself (a panic, a mismatch), Position()-1 is
// the index of the ExecutionCompleted event it produced.
func (e *Execution) Position() int { return e.position }

// ExecutionID returns the id of the execution.
func (e *Execution) ExecutionID() string { return e.executionID }

// OpenTasks returns the events that opened the tasks that have not
// completed (their Type.Opens), in task order: after a restart, those whose
// Type.Index is history.PendingIndex (activities, sub-orchestrations) must
// be dispatched again.
func (e *Execution) OpenTasks() []*history.Event {
	out := make([]*history.Event, 0, len(e.open))
	for _, t := range e.open {
		out = append(out, t.scheduled)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out
}

// openTask is a task waiting for its completion event.
type openTask struct {
	t         *taskState
	name      string
	scheduled *history.Event
}

// Replay rebuilds the execution from its stored history. Every action the
// code asks for must match the history; a mismatch ends the execution with a
// NonDeterminismError failure, which the returned turn carries (its Events
// then hold the ExecutionCompleted event to append).
func (e *Execution) Replay(events []*history.Event) (*Turn, error) {
	if e.done {
		return nil, ErrExecutionDone
	}
	e.turn = &Turn{}
	e.replaying = true
	e.replayEvents, e.replayBase = events, e.position
	for _, ev := range events {
		if e.done {
			break
		}
		pos := e.position
		e.position++
		e.process(ev, pos)
	}
	e.replaying = false
	e.replayEvents = nil
	if !e.done {
		if first := e.firstUnmatched(); first.ev != nil {
			e.fail(e.mismatch(e.position, nil, first))
		}
	}
	return e.finishTurn(), nil
}

// Apply feeds new events (not yet in the stored history) and runs the code
// until it blocks again or ends. Only incoming events are accepted: the
// events that record the code's own actions are produced by the engine.
func (e *Execution) Apply(events []*history.Event) (*Turn, error) {
	if e.done {
		return nil, ErrExecutionDone
	}
	for _, ev := range events {
		if ev.Type.IsAction() {
			return nil, fmt.Errorf("apply %s: this event records an action of the code and cannot be applied", ev.Type)
		}
	}
	e.turn = &Turn{}
	e.replaying = false
	for _, ev := range events {
		if e.done {
			break
		}
		pos := e.emit(ev)
		e.process(ev, pos)
	}
	return e.finishTurn(), nil
}

// Close stops the code's goroutine wherever it is blocked. The execution is
// unusable afterwards. Safe to call more than once.
func (e *Execution) Close() {
	if e.closing {
		return
	}
	e.closing = true
	if e.started && !e.gone {
		e.resume <- true
		<-e.yield
	}
}

// emit appends a new event to the turn and returns its history position.
func (e *Execution) emit(ev *history.Event) int {
	if ev.Timestamp.IsZero() {
		ev.Timestamp = e.now
	}
	e.turn.Events = append(e.turn.Events, ev)
	pos := e.position
	e.position++
	return pos
}

func (e *Execution) process(ev *history.Event, pos int) {
	e.cursor = pos + 1 // where a code run this event triggers recorded its first action
	switch ev.Type {
	case history.OrchestratorStarted:
		// A turn boundary: every action of the previous turn was recorded
		// before this event, so anything unmatched now was never recorded.
		if e.replaying {
			if first := e.firstUnmatched(); first.ev != nil {
				e.fail(e.mismatch(pos, ev, first))
				return
			}
		}
		e.now = ev.Timestamp
	case history.ExecutionStarted:
		if e.started {
			return
		}
		e.name = ev.Name
		e.version = ev.Version
		e.input = ev.Payload
		if e.now.IsZero() {
			e.now = ev.Timestamp
		}
		e.start()
	case history.ExecutionSuspended:
		e.suspended = true
	case history.ExecutionResumed:
		e.suspended = false
		held := e.held
		e.held = nil
		for _, h := range held {
			if e.done {
				return
			}
			e.deliver(h)
		}
	case history.ContinuedAsNew:
		if e.pendingCompletion == nil || e.pendingCompletion.Type != history.ContinuedAsNew {
			e.fail(e.mismatch(pos, ev, e.firstUnmatched()))
			return
		}
		e.pendingCompletion = nil
		e.done = true
	case history.ExecutionCompleted:
		if e.pendingCompletion == nil || e.pendingCompletion.Type != history.ExecutionCompleted {
			e.fail(e.mismatch(pos, ev, e.firstUnmatched()))
			return
		}
		e.pendingCompletion = nil
		e.done = true
		e.output = ev.Payload
		e.failure = ev.Failure
	case history.PatchMarker:
		// Only replay meets a marker here (Apply takes no actions as
		// input); the code must have asked for it at this very position.
		if len(e.patchAt) > 0 && e.patchAt[0] == pos {
			e.patchAt = e.patchAt[1:]
			return
		}
		e.fail(e.mismatch(pos, ev, e.firstUnmatched()))
	default:
		switch {
		case ev.Type.IsAction(): // the ending ones have their cases above
			e.matchRecordedAction(ev, pos)
		case ev.Type.IsCompletion() || ev.Type == history.EventRaised:
			if e.suspended {
				e.held = append(e.held, ev)
				return
			}
			e.deliver(ev)
		default:
			// Event types this engine does not act on (yet) are kept in
			// history and skipped, so an older engine can replay a newer
			// history.
		}
	}
}

func (e *Execution) matchRecordedAction(ev *history.Event, pos int) {
	a, ok := e.unmatched[ev.TaskID]
	if !ok || a.ev.Type != ev.Type || a.ev.Name != ev.Name || a.ev.InstanceID != ev.InstanceID {
		if !ok {
			a = e.firstUnmatched()
		}
		e.fail(e.mismatch(pos, ev, a))
		return
	}
	delete(e.unmatched, ev.TaskID)
}

// askedAction is an action the code asked for while replaying, with the
// stack of the call that asked, for the error if history disagrees.
type askedAction struct {
	ev   *history.Event
	site callers
}

// mismatch is the error for history event recorded (nil: history holds
// nothing more) at pos against the code's request asked (zero: the code
// asked for nothing). When the code asked for nothing, the call it is
// blocked in is the one that diverged.
func (e *Execution) mismatch(pos int, recorded *history.Event, asked askedAction) *NonDeterminismError {
	nd := &NonDeterminismError{Position: pos}
	if recorded != nil {
		nd.Recorded = recorded.Describe()
	}
	site := asked.site
	if asked.ev != nil {
		nd.Requested = asked.ev.Describe()
	} else {
		site = e.blockedSite()
	}
	nd.CallSite = site.String()
	return nd
}

// deliver hands a completion or an external event to the code.
func (e *Execution) deliver(ev *history.Event) {
	switch ev.Type {
	case history.EventRaised:
		key := strings.ToLower(ev.Name)
		if waiters := e.eventWaiters[key]; len(waiters) > 0 {
			t := waiters[0]
			if len(waiters) == 1 {
				delete(e.eventWaiters, key)
			} else {
				e.eventWaiters[key] = waiters[1:]
			}
			t.complete(ev.Payload, nil)
		} else {
			e.buffered = append(e.buffered, ev)
			return
		}
	default:
		ot := e.takeOpen(ev.TaskID)
		if ot == nil {
			return // not open: a duplicate or stray result, recorded and ignored
		}
		switch {
		case ev.Type.IsFailure():
			failure := ev.Failure
			if failure == nil {
				failure = &FailureDetails{Message: "unknown failure"}
			}
			ot.t.complete(nil, &TaskFailedError{TaskName: ot.name, TaskID: ev.TaskID, Failure: failure})
		case ev.Type.HasResult():
			ot.t.complete(ev.Payload, nil)
		default: // a timer fired, a lock granted: done, with nothing to hand over
			ot.t.complete(nil, nil)
		}
	}
	e.resumeIfReady()
}

// withdrawWaiter removes t from the waits for events named key (lower
// case), so the next such event goes to another wait or the buffer.
func (e *Execution) withdrawWaiter(key string, t *taskState) {
	waiters := slices.DeleteFunc(e.eventWaiters[key], func(w *taskState) bool { return w == t })
	if len(waiters) == 0 {
		delete(e.eventWaiters, key)
	} else {
		e.eventWaiters[key] = waiters
	}
}

// takeBuffered removes and returns the first buffered event named name.
func (e *Execution) takeBuffered(name string) *history.Event {
	for i, ev := range e.buffered {
		if strings.EqualFold(ev.Name, name) {
			e.buffered = append(e.buffered[:i:i], e.buffered[i+1:]...)
			return ev
		}
	}
	return nil
}

// firstUnmatched returns the first action (by task id) the code asked for
// while replaying that history has not matched yet, else the completion
// it asked for by returning, else the zero askedAction.
func (e *Execution) firstUnmatched() askedAction {
	var first askedAction
	for _, a := range e.unmatched {
		if first.ev == nil || a.ev.TaskID < first.ev.TaskID {
			first = a
		}
	}
	if first.ev == nil && e.pendingCompletion != nil {
		first.ev = e.pendingCompletion
	}
	return first
}

func (e *Execution) takeOpen(id int64) *openTask {
	t, ok := e.open[id]
	if !ok {
		return nil
	}
	delete(e.open, id)
	return t
}

// schedule records an action the code asked for. While replaying it must be
// found in history; otherwise it is new and goes out with this turn.
func (e *Execution) schedule(ev *history.Event) {
	if e.replaying {
		if e.unmatched == nil {
			e.unmatched = make(map[int64]askedAction)
		}
		e.unmatched[ev.TaskID] = askedAction{ev: ev, site: e.callStack()}
		e.cursor++
		return
	}
	e.emit(ev)
	e.turn.Actions = append(e.turn.Actions, ev)
}

func (e *Execution) finishTurn() *Turn {
	t := e.turn
	e.turn = nil
	t.Done = e.done
	t.Output = e.output
	t.Failure = e.failure
	t.CustomStatus = e.customStatus
	t.Suspended = e.suspended
	if e.done && e.continueAsNew != nil && t.Failure == nil {
		t.ContinuedAsNew = true
		t.NewInput = e.continueAsNew.input
		t.KeepHistory = e.continueAsNew.keepHistory
		t.DefaultVersion = e.continueAsNew.defaultVersion
		t.Output = nil
		for _, ev := range e.buffered {
			t.CarryOver = append(t.CarryOver, &history.Event{Type: history.EventRaised, Timestamp: ev.Timestamp, Name: ev.Name, Payload: ev.Payload})
		}
	}
	return t
}

// fail ends the execution with a failure produced by the engine itself
// (non-determinism, a panic); the ExecutionCompleted event is new even while
// replaying.
func (e *Execution) fail(err error) {
	if nd, ok := err.(*NonDeterminismError); ok {
		e.nonDeterminism = nd
	}
	f, ok := err.(*FailureDetails)
	if !ok {
		f = failureFromError(err)
	}
	e.stopCode()
	e.releaseLocks(true)
	e.finish(&history.Event{Type: history.ExecutionCompleted, Timestamp: e.now, Failure: f})
}

func (e *Execution) finish(ev *history.Event) {
	e.emit(ev)
	e.done = true
	if ev.Type == history.ExecutionCompleted {
		e.output = ev.Payload
	}
	e.failure = ev.Failure
	e.unmatched = nil
	e.pendingCompletion = nil
}

func (e *Execution) stopCode() {
	if e.started && !e.returned {
		e.Close()
	}
}

// start launches the code's goroutine and runs it until it first blocks.
func (e *Execution) start() {
	e.started = true
	go e.run()
	e.runUntilBlocked()
}

func (e *Execution) run() {
	defer func() {
		// Returned, panicked, told to exit, or left by the code's own
		// runtime.Goexit: the engine waits for this last yield.
		e.gone = true
		e.yield <- struct{}{}
	}()
	if abort := <-e.resume; abort {
		return
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				e.panicked = &FailureDetails{
					ErrorType:  ErrorTypePanic,
					Message:    fmt.Sprint(r),
					StackTrace: string(debug.Stack()),
				}
			}
		}()
		e.result, e.err = e.fn(e.ctx)
	}()
	e.returned = true
}

// runUntilBlocked hands control to the code and waits until it blocks on a
// task or returns.
func (e *Execution) runUntilBlocked() {
	e.running = true
	e.resume <- false
	<-e.yield
	if e.gone && !e.returned {
		// The code left its goroutine without returning (runtime.Goexit,
		// t.FailNow): nothing more can run.
		e.returned = true
		e.panicked = &FailureDetails{ErrorType: ErrorTypePanic, Message: "orchestrator goroutine exited without returning"}
	}
	e.running = false
	if err := e.halted; err != nil {
		e.halted = nil
		e.fail(err) // stops the code's goroutine, blocked in halt
		return
	}
	if e.returned {
		e.codeReturned()
	}
}

// block is called on the code's goroutine: it gives control back to the
// engine until resumed, or exits the goroutine if the execution is closed.
func (e *Execution) block(t *taskState) {
	if e.closing {
		// A deferred call of the code, run while its goroutine exits, waits
		// for a task: nothing will come, and the engine waits for the exit.
		runtime.Goexit()
	}
	e.waiting = t
	for {
		e.yield <- struct{}{}
		if abort := <-e.resume; abort {
			runtime.Goexit()
		}
		if e.siteWanted == nil {
			break
		}
		// The engine asks where the code is blocked (blockedSite): only
		// when history disagrees with it, so the stack walk is not paid
		// on every wait.
		*e.siteWanted = e.callStack()
		e.siteWanted = nil
	}
	e.waiting = nil
}

// blockedSite returns the stack of the call the code's goroutine is blocked
// in, which it captures when asked and then blocks again; zero when the
// code is not blocked in a wait.
func (e *Execution) blockedSite() callers {
	var site callers
	if e.waiting == nil || e.returned {
		return site
	}
	e.siteWanted = &site
	e.running = true
	defer func() { e.running, e.siteWanted = false, nil }()
	// The code's goroutine is blocked in block: it captures the stack and
	// yields again.
	e.resume <- false
	<-e.yield
	return site
}

// halt is called on the code's goroutine when it finds a non-determinism
// itself (IsPatched): it hands err to the engine, which ends the execution
// with it and makes this goroutine exit. It does not return.
func (e *Execution) halt(err error) {
	e.halted = err
	e.block(&taskState{e: e, kind: "halt", id: -1}) // never completes
}

func (e *Execution) resumeIfReady() {
	if e.waiting != nil && e.waiting.done && !e.done {
		e.runUntilBlocked()
	}
}

func (e *Execution) codeReturned() {
	// Locks never outlive the execution, whatever its outcome.
	e.releaseLocks(e.panicked != nil)
	if e.panicked != nil {
		e.finish(&history.Event{Type: history.ExecutionCompleted, Timestamp: e.now, Failure: e.panicked})
		return
	}
	ev := &history.Event{Type: history.ExecutionCompleted, Timestamp: e.now}
	if e.err == nil && e.continueAsNew != nil {
		ev = &history.Event{Type: history.ContinuedAsNew, Timestamp: e.now, Payload: e.continueAsNew.input}
	} else if e.err != nil {
		ev.Failure = failureFromError(e.err)
	} else if e.result != nil {
		out, err := jsonfast.Marshal(e.result)
		if err != nil {
			ev.Failure = failureFromError(fmt.Errorf("marshal orchestrator output: %w", err))
		} else {
			ev.Payload = out
		}
	}
	if e.replaying {
		e.pendingCompletion = ev
		return
	}
	e.finish(ev)
}

// marshalPayload encodes a value handed to the engine by the code; nil stays
// nil (no payload), json.RawMessage passes through.
func marshalPayload(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, errors.New("invalid JSON in json.RawMessage")
		}
		return raw, nil
	}
	return jsonfast.Marshal(v)
}
