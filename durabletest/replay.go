// Package durabletest tests orchestrations: it checks orchestrator code
// against real histories before it runs them, and runs orchestrations in a
// fast test environment.
//
// Replay and ReplayJSON replay a history, as Client.History returns it or
// as the HTTP API and `durable history --json` print it, with the real
// engine (orchestration.Execution, no I/O, no clock) and return the
// precise *orchestration.NonDeterminismError where the code would diverge,
// or nil when it would carry on. Run them in a test or a CI step over
// histories exported from production before deploying changed code;
// Runtime.CheckRunning (root package) does it for every instance still
// running in a store.
//
// Env is an in-memory runtime (the real engine and store code paths) on a
// controlled clock: durable timers fire when the test advances time, or at
// once when it asks to skip; activities can be replaced by fakes; events
// and entity signals are sent at the moments the test chooses.
package durabletest

import (
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/internal/replay"
	"github.com/durable-go/durable/orchestration"
)

// Replay replays events, the history of one instance, against orchestrator
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
func Replay(orchestrator orchestration.Orchestrator, events []*history.Event) error {
	return replay.History(orchestrator, events)
}
