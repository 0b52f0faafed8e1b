// Package replay replays a recorded history against orchestrator code with
// the real engine (orchestration.Execution: no I/O, no clock) and reports
// where the code diverges. Package durabletest exposes it to users, and the
// root package's Runtime.CheckRunning runs it over the instances of a
// store; it lives here so that durabletest may build on the root package.
package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

// History replays events, the history of one instance, against orchestrator
// and returns nil when the code does what the history records, or an error
// that wraps the *orchestration.NonDeterminismError (errors.As finds it)
// naming the first diverging history position, what history holds there,
// what the code asked for and the code's call site.
//
// A history that ends (ExecutionCompleted or ContinuedAsNew) must end the
// same way on replay: the code must complete with output equal as JSON to
// the recorded one, fail with the same error type and message, or continue
// as new with equal input. An outcome that differs is reported as a
// NonDeterminismError at the position of the recorded end, with both
// outcomes described and no call site (the code returned). So is a panic
// on replay where history shows the code carried on. A terminated history
// is checked up to its last event (termination is not the code's doing).
//
// A history with several executions (Client.History with AllExecutions) is
// replayed one execution at a time; the error names the execution, and its
// Position counts from that execution's first event.
func History(orchestrator orchestration.Orchestrator, events []*history.Event) error {
	if orchestrator == nil {
		return errors.New("durabletest: replay: nil orchestrator")
	}
	execs := splitExecutions(events)
	if len(execs) == 0 {
		return errors.New("durabletest: replay: empty history")
	}
	for i, exec := range execs {
		if err := replayExecution(orchestrator, exec); err != nil {
			if len(execs) > 1 {
				return fmt.Errorf("execution %d of %d: %w", i+1, len(execs), err)
			}
			return err
		}
	}
	return nil
}

// splitExecutions cuts a history after each ContinuedAsNew: each part is
// one execution, replayed by an Execution of its own as the runtime does.
func splitExecutions(events []*history.Event) [][]*history.Event {
	var out [][]*history.Event
	start := 0
	for i, ev := range events {
		if ev.Type == history.ContinuedAsNew {
			out = append(out, events[start:i+1])
			start = i + 1
		}
	}
	if start < len(events) {
		out = append(out, events[start:])
	}
	return out
}

// outcome is what the code did when it returned, captured around it: the
// engine keeps the recorded output of a replayed completion, not the code's.
type outcome struct {
	returned bool
	result   any
	err      error
}

func replayExecution(fn orchestration.Orchestrator, events []*history.Event) error {
	var started *history.Event
	for _, ev := range events {
		if ev.Type == history.ExecutionStarted {
			started = ev
			break
		}
	}
	if started == nil {
		return errors.New("durabletest: replay: history has no ExecutionStarted event")
	}
	var got outcome
	wrapped := func(ctx *orchestration.Context) (any, error) {
		r, err := fn(ctx)
		got = outcome{returned: true, result: r, err: err}
		return r, err
	}
	exec := orchestration.NewExecution(started.InstanceID, started.ExecutionID, wrapped, slog.New(slog.DiscardHandler))
	turn, err := exec.Replay(events)
	// Close waits for the code's goroutine to exit: got is safe to read after.
	exec.Close()
	if err != nil {
		return fmt.Errorf("durabletest: replay instance %q: %w", started.InstanceID, err)
	}
	if nd := exec.NonDeterminism(); nd != nil {
		return fmt.Errorf("durabletest: replay instance %q against %s: %w", started.InstanceID, started.Name, nd)
	}
	last := events[len(events)-1]
	if len(turn.Events) > 0 {
		// The engine ended the execution itself (the code panicked): fine
		// only if history ends with that very failure at that position.
		ended := turn.Events[len(turn.Events)-1]
		pos := exec.Position() - 1
		if pos == len(events)-1 && last.Type == history.ExecutionCompleted && sameFailure(last.Failure, ended.Failure) {
			return nil
		}
		nd := &orchestration.NonDeterminismError{Position: pos, Requested: describeEnd(ended.Type, ended.Payload, ended.Failure)}
		if pos < len(events) {
			nd.Recorded = events[pos].Describe()
		}
		return fmt.Errorf("durabletest: replay instance %q against %s: %w", started.InstanceID, started.Name, nd)
	}
	if !turn.Done {
		return nil
	}
	// History ended and the engine matched the kind of end; compare what.
	requested, same := codeEnd(last, got, turn)
	if same {
		return nil
	}
	nd := &orchestration.NonDeterminismError{
		Position:  len(events) - 1,
		Recorded:  describeEnd(last.Type, last.Payload, last.Failure),
		Requested: requested,
	}
	return fmt.Errorf("durabletest: replay instance %q against %s: %w", started.InstanceID, started.Name, nd)
}

// codeEnd describes how the code ended and reports whether that is the end
// recorded in last.
func codeEnd(last *history.Event, got outcome, turn *orchestration.Turn) (string, bool) {
	if last.Type == history.ContinuedAsNew {
		return describeEnd(history.ContinuedAsNew, turn.NewInput, nil), jsonEqual(last.Payload, turn.NewInput)
	}
	if !got.returned {
		return "nothing", false // not reached: the engine matched a completion
	}
	if got.err != nil {
		// As the engine records a returned error (failureFromError).
		f := &history.Failure{ErrorType: fmt.Sprintf("%T", got.err), Message: got.err.Error()}
		var nd *orchestration.NonDeterminismError
		if errors.As(got.err, &nd) {
			f.ErrorType = orchestration.ErrorTypeNonDeterminism
		}
		return describeEnd(history.ExecutionCompleted, nil, f), sameFailure(last.Failure, f)
	}
	var out []byte
	if got.result != nil {
		var err error
		if out, err = json.Marshal(got.result); err != nil {
			f := &history.Failure{ErrorType: "*fmt.wrapError", Message: "marshal orchestrator output: " + err.Error()}
			return describeEnd(history.ExecutionCompleted, nil, f), sameFailure(last.Failure, f)
		}
	}
	return describeEnd(history.ExecutionCompleted, out, nil), last.Failure == nil && jsonEqual(last.Payload, out)
}

// sameFailure compares failures by type and message: a stack trace holds
// addresses and lines that change with any rebuild.
func sameFailure(a, b *history.Failure) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ErrorType == b.ErrorType && a.Message == b.Message
}

// jsonEqual compares two JSON payloads by value; empty and null are equal.
func jsonEqual(a, b []byte) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if len(a) == 0 {
		a = []byte("null")
	}
	if len(b) == 0 {
		b = []byte("null")
	}
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ca, _ := json.Marshal(va)
	cb, _ := json.Marshal(vb)
	return bytes.Equal(ca, cb)
}

// describeEnd renders an end of execution for a NonDeterminismError.
func describeEnd(t history.Type, payload []byte, f *history.Failure) string {
	if f != nil {
		return fmt.Sprintf("%s(failed: %s)", t, f.Error())
	}
	what := "output"
	if t == history.ContinuedAsNew {
		what = "input"
	}
	p := string(bytes.TrimSpace(payload))
	if p == "" {
		p = "null"
	}
	const max = 200
	if len(p) > max {
		p = p[:max] + "..."
	}
	return fmt.Sprintf("%s(%s=%s)", t, what, p)
}
