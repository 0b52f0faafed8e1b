package orchestration

import (
	"fmt"
	"github.com/durable-go/durable/internal/jsonfast"
)

// Task is the pending result of something the orchestrator asked for: an
// activity, a timer, an external event, a sub-orchestration, or a
// combination of tasks.
type Task interface {
	// Await blocks the orchestrator until the task completes, then decodes
	// its JSON result into out (which may be nil to discard it) or returns
	// its error.
	Await(out any) error
	// IsDone reports whether the task has completed, without blocking.
	IsDone() bool

	state() *taskState
}

// Await waits for t and returns its result decoded as a T: a typed form of
// Task.Await.
func Await[T any](t Task) (T, error) {
	var v T
	err := t.Await(&v)
	return v, err
}

// taskState is the completion state shared by every kind of task. Listeners
// run on completion, on the engine's side, in the order they were added:
// composites and retries are built from them.
type taskState struct {
	e *Execution
	// kind, name and id describe the task in errors; the text is built only
	// when needed (a fmt.Sprintf per scheduled task showed in profiles).
	kind      string
	name      string
	id        int64
	done      bool
	result    []byte
	err       error
	listeners []func()
}

func (t *taskState) state() *taskState { return t }

// describe names the task for an error message.
func (t *taskState) describe() string {
	if t.name != "" {
		return fmt.Sprintf("%s %q (task %d)", t.kind, t.name, t.id)
	}
	return fmt.Sprintf("%s (task %d)", t.kind, t.id)
}

// IsDone reports whether the task has completed.
func (t *taskState) IsDone() bool { return t.done }

// Await blocks until the task completes and decodes its result into out.
func (t *taskState) Await(out any) error {
	for !t.done {
		t.e.block(t)
	}
	if t.err != nil {
		return t.err
	}
	if out != nil && len(t.result) > 0 {
		if err := jsonfast.Unmarshal(t.result, out); err != nil {
			return fmt.Errorf("decode result of %s: %w", t.describe(), err)
		}
	}
	return nil
}

func (t *taskState) complete(result []byte, err error) {
	if t.done {
		return
	}
	t.done = true
	t.result = result
	t.err = err
	listeners := t.listeners
	t.listeners = nil
	for _, l := range listeners {
		l()
	}
}

func (t *taskState) onDone(f func()) {
	if t.done {
		f()
		return
	}
	t.listeners = append(t.listeners, f)
}

// WhenAll returns a task that completes when all of tasks have. Its Await
// returns the first error among tasks (in the order given) or nil; read each
// task's result from the task itself.
func (c *Context) WhenAll(tasks ...Task) Task {
	all := &taskState{e: c.e, kind: "WhenAll", id: -1}
	remaining := len(tasks)
	finish := func() {
		for _, t := range tasks {
			if err := t.state().err; err != nil {
				all.complete(nil, err)
				return
			}
		}
		all.complete(nil, nil)
	}
	if remaining == 0 {
		finish()
		return all
	}
	for _, t := range tasks {
		t.state().onDone(func() {
			remaining--
			if remaining == 0 {
				finish()
			}
		})
	}
	return all
}

// WhenAnyTask completes when the first of its tasks completes; Winner says
// which. Its Await returns nil whatever the winner's outcome: await the
// winner for its result.
type WhenAnyTask struct {
	taskState
	winner Task
}

// Winner returns the task that completed first (nil until then).
func (w *WhenAnyTask) Winner() Task { return w.winner }

// WhenAny returns a task that completes as soon as any of tasks completes.
// Which one wins is decided by history order, so a replay picks the same.
func (c *Context) WhenAny(tasks ...Task) *WhenAnyTask {
	w := &WhenAnyTask{taskState: taskState{e: c.e, kind: "WhenAny", id: -1}}
	if len(tasks) == 0 {
		w.complete(nil, fmt.Errorf("WhenAny of no tasks"))
		return w
	}
	for _, t := range tasks {
		t := t
		t.state().onDone(func() {
			if w.winner == nil {
				w.winner = t
				w.complete(nil, nil)
			}
		})
	}
	return w
}
