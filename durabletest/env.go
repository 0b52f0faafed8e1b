package durabletest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
)

// DefaultStart is the time an Env's clock starts at unless
// EnvOptions.Start says otherwise.
var DefaultStart = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// Grace is how far past the end of an Advance a timer may be due and still
// fire in it. The engine stamps an instance's events strictly increasing,
// a nanosecond apart while the clock stands still, so a one-hour timer
// created in a later turn of the same instant (after an activity, say) is
// due an hour and a few nanoseconds later: Advance(time.Hour) fires it,
// and the clock then reads its due time.
const Grace = time.Millisecond

// DefaultSettleTimeout is the default of EnvOptions.SettleTimeout.
const DefaultSettleTimeout = 30 * time.Second

// EnvOptions configure NewEnv. The zero value is fine.
type EnvOptions struct {
	// Start is the clock's first reading (default DefaultStart).
	Start time.Time
	// Logger receives the runtime's logs (default: discarded).
	Logger *slog.Logger
	// Partitions is the number of store partitions (default 4).
	Partitions int
	// SettleTimeout bounds how long, in real time, the Env waits for the
	// runtime to finish the work a step caused before it fails the test
	// (default DefaultSettleTimeout): a guard against a hang, not a
	// measure of speed. A step normally settles in milliseconds.
	SettleTimeout time.Duration
}

// Env is a test environment for orchestrations: an in-memory runtime (the
// real engine, actors and store code paths, with Badger in memory) whose
// workflow time is a Clock that moves only when the test says. Durable
// timers fire when the test advances time (Advance) or at once when it
// asks to skip (RunUntilDone); activities can be replaced by fakes
// (OnActivity); external events and entity signals go in at the moments
// the test chooses; history and status are read as from any runtime.
//
// After each step (a start, an event, a signal, a move of the clock) the
// Env waits until the runtime has settled: no activity, sub-orchestration,
// message or commit still under way and no timer due (see
// durable.Backlog). A test therefore sees the whole effect of a step, and
// a week of timers takes as long as the work between them.
//
// Register the code under test on Runtime, then Start. The methods fail
// the test (t.Fatal) on an error, so call them from the test's goroutine;
// the runtime is closed when the test ends.
type Env struct {
	t             testing.TB
	rt            *durable.Runtime
	clock         *Clock
	settleTimeout time.Duration
}

// NewEnv opens the environment's runtime (not started yet).
func NewEnv(t testing.TB, opts EnvOptions) *Env {
	t.Helper()
	if opts.Start.IsZero() {
		opts.Start = DefaultStart
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.SettleTimeout <= 0 {
		opts.SettleTimeout = DefaultSettleTimeout
	}
	clock := NewClock(opts.Start)
	rt, err := durable.Open(durable.Options{Logger: opts.Logger, Partitions: opts.Partitions, Clock: clock})
	if err != nil {
		t.Fatalf("durabletest: open the runtime: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("durabletest: close the runtime: %v", err)
		}
	})
	return &Env{t: t, rt: rt, clock: clock, settleTimeout: opts.SettleTimeout}
}

// Runtime is the environment's runtime: register orchestrators, activities
// and entities on it before Start.
func (e *Env) Runtime() *durable.Runtime { return e.rt }

// Client is the runtime's client, for anything the Env has no shortcut
// for. After a write through it, call Settle to let its effects finish.
func (e *Env) Client() *durable.Client { return e.rt.Client() }

// Clock is the environment's clock.
func (e *Env) Clock() *Clock { return e.clock }

// Now is the workflow time: what orchestrator code sees as Context.Now.
func (e *Env) Now() time.Time { return e.clock.Now() }

// Start starts the runtime.
func (e *Env) Start() {
	e.t.Helper()
	if err := e.rt.Start(); err != nil {
		e.t.Fatalf("durabletest: start the runtime: %v", err)
	}
}

// OnActivity replaces the activity registered under name by fn (of the
// form Runtime.RegisterActivity takes), or registers fn if there is none:
// a fake for the test. It may be called at any moment; the next task
// scheduled runs fn.
func (e *Env) OnActivity(name string, fn any) {
	e.t.Helper()
	if err := e.rt.ReplaceActivity(name, fn); err != nil {
		e.t.Fatalf("durabletest: %v", err)
	}
}

func (e *Env) ctx() context.Context { return e.t.Context() }

// StartOrchestration starts an instance of orchestrator name with input,
// lets it run until it settles and returns its id.
func (e *Env) StartOrchestration(name string, input any, opts ...durable.StartOption) string {
	e.t.Helper()
	id, err := e.Client().Start(e.ctx(), name, input, opts...)
	if err != nil {
		e.t.Fatalf("durabletest: start %s: %v", name, err)
	}
	e.Settle()
	return id
}

// RaiseEvent raises event name with payload to instance id now, and lets
// the runtime settle.
func (e *Env) RaiseEvent(id, name string, payload any) {
	e.t.Helper()
	if err := e.Client().RaiseEvent(e.ctx(), id, name, payload); err != nil {
		e.t.Fatalf("durabletest: raise %s to %s: %v", name, id, err)
	}
	e.Settle()
}

// SignalEntity signals operation op with input to entity id now, and lets
// the runtime settle.
func (e *Env) SignalEntity(id durable.EntityID, op string, input any) {
	e.t.Helper()
	if err := e.Client().SignalEntity(e.ctx(), id, op, input); err != nil {
		e.t.Fatalf("durabletest: signal %s to %s: %v", op, id, err)
	}
	e.Settle()
}

// Status reads the status of instance id.
func (e *Env) Status(id string) *durable.Status {
	e.t.Helper()
	st, err := e.Client().Status(e.ctx(), id)
	if err != nil {
		e.t.Fatalf("durabletest: status of %s: %v", id, err)
	}
	return st
}

// History reads the history of instance id's current execution.
func (e *Env) History(id string) []*history.Event {
	e.t.Helper()
	events, err := e.Client().History(e.ctx(), id)
	if err != nil {
		e.t.Fatalf("durabletest: history of %s: %v", id, err)
	}
	return events
}

// Settle waits until the runtime has finished the work under way at the
// current time (see Env). Env's own steps call it; call it after a write
// made through Client.
func (e *Env) Settle() {
	e.t.Helper()
	if err := e.settle(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *Env) settle() error {
	deadline := time.Now().Add(e.settleTimeout)
	for {
		b, err := e.rt.Backlog()
		if err != nil {
			return fmt.Errorf("durabletest: read the backlog: %w", err)
		}
		now := e.clock.Now()
		busy, err := e.busyTasks(b.Tasks)
		if err != nil {
			return err
		}
		b.Tasks = busy
		if b.Settled(now) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("durabletest: the runtime did not settle in %s at %s: open tasks of %v, %d with messages on the way, committing %v, next timer %s",
				e.settleTimeout, now.Format(time.RFC3339Nano), b.Tasks, b.Messages, b.Committing, b.NextTimer.Format(time.RFC3339Nano))
		}
		select {
		case <-e.ctx().Done():
			return fmt.Errorf("durabletest: settle: %w", e.ctx().Err())
		case <-time.After(200 * time.Microsecond):
		}
	}
}

// busyTasks returns those of the instances with open tasks whose tasks are
// under way: an activity (to run or running), or a sub-orchestration that
// has not started yet or whose outcome has not reached its parent. A
// sub-orchestration that runs and waits (for its own timer, an event) is
// not: its own work, if any, is in the backlog under its own id.
func (e *Env) busyTasks(ids []string) ([]string, error) {
	var busy []string
	for _, id := range ids {
		events, err := e.Client().History(e.ctx(), id)
		if err != nil {
			return nil, fmt.Errorf("durabletest: history of %s: %w", id, err)
		}
		open := map[int64]*history.Event{}
		for _, ev := range events {
			switch {
			case ev.Type == history.TaskScheduled || ev.Type == history.SubOrchestrationCreated:
				open[ev.TaskID] = ev
			case ev.Type.IsCompletion():
				delete(open, ev.TaskID)
			}
		}
		for _, ev := range open {
			if ev.Type == history.TaskScheduled || !e.childWaits(ev.InstanceID) {
				busy = append(busy, id)
				break
			}
		}
		if len(open) == 0 {
			busy = append(busy, id) // the index is ahead of the history read: look again
		}
	}
	return busy, nil
}

// childWaits reports whether sub-orchestration id has started and not
// ended.
func (e *Env) childWaits(id string) bool {
	st, err := e.Client().Status(e.ctx(), id)
	return err == nil && !st.RuntimeStatus.IsTerminal() && st.RuntimeStatus != durable.StatusPending
}

// Advance moves workflow time d forward: the durable timers due in that
// span (and up to Grace after it) fire in the order they are due, each at
// its due time, and what they cause (activities, new timers, which fire
// too if due in the span) runs before the next; then the clock stops at
// the end of the span, or at the last timer fired if that is later.
func (e *Env) Advance(d time.Duration) {
	e.t.Helper()
	if d < 0 {
		e.t.Fatalf("durabletest: advance by %s: time does not go back", d)
	}
	end := e.clock.Now().Add(d)
	for {
		e.Settle()
		next := e.nextTimer()
		if next.IsZero() || next.After(end.Add(Grace)) {
			break
		}
		e.clock.Set(next)
	}
	e.clock.Set(end)
	e.Settle()
}

// RunUntilDone skips time: it fires each next durable timer at once (the
// clock jumps to its due time) until instance id has ended, and returns
// its final status. An instance that is left waiting with no timer (for an
// event nobody raises) fails the test, with its status.
func (e *Env) RunUntilDone(id string) *durable.Status {
	e.t.Helper()
	for {
		e.Settle()
		st := e.Status(id)
		if st.RuntimeStatus.IsTerminal() {
			return st
		}
		next := e.nextTimer()
		if next.IsZero() {
			e.t.Fatalf("durabletest: %s is %s with no timer to fire (custom status %s): it waits for something only the test can send",
				id, st.RuntimeStatus, st.CustomStatus)
		}
		e.clock.Set(next)
	}
}

func (e *Env) nextTimer() time.Time {
	e.t.Helper()
	b, err := e.rt.Backlog()
	if err != nil {
		e.t.Fatalf("durabletest: read the backlog: %v", err)
	}
	return b.NextTimer
}
