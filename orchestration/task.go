package orchestration

import (
	"encoding/json"
	"fmt"

	"github.com/durable-go/durable/history"
)

// Task is the pending result of something the orchestrator asked for.
type Task interface {
	// Await blocks the orchestrator until the task completes, then decodes
	// its JSON result into out (which may be nil to discard it) or returns
	// its error.
	Await(out any) error
	// IsDone reports whether the task has completed, without blocking.
	IsDone() bool
}

// Await waits for t and returns its result decoded as a T: a typed form of
// Task.Await.
func Await[T any](t Task) (T, error) {
	var v T
	err := t.Await(&v)
	return v, err
}

type task struct {
	e         *Execution
	id        int64
	name      string
	scheduled *history.Event

	done   bool
	result []byte
	err    error
}

func (t *task) IsDone() bool { return t.done }

func (t *task) Await(out any) error {
	for !t.done {
		t.e.block(t)
	}
	if t.err != nil {
		return t.err
	}
	if out != nil && len(t.result) > 0 {
		if err := json.Unmarshal(t.result, out); err != nil {
			return fmt.Errorf("decode result of task %q (id %d): %w", t.name, t.id, err)
		}
	}
	return nil
}

func (t *task) complete(result []byte, err error) {
	t.done = true
	t.result = result
	t.err = err
}
