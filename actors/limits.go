package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// ErrorTypeLimit is the ErrorType of a failure caused by a limit of
// Config (a payload too large, a history too long).
const ErrorTypeLimit = "LimitExceeded"

// Limits bound what user code may make the node store. A zero field is no
// limit.
type Limits struct {
	// MaxPayloadBytes bounds an orchestration's output, an activity's
	// result, an entity's state and an entity operation's result.
	MaxPayloadBytes int
	// HistoryWarnEvents: an instance whose history grows past it is
	// logged at Warn, once per activation.
	HistoryWarnEvents int
	// MaxHistoryEvents: a turn that would grow an execution's history past
	// it fails the instance instead, pointing to continue-as-new.
	MaxHistoryEvents int
}

func limitFailure(format string, args ...any) *history.Failure {
	return &history.Failure{ErrorType: ErrorTypeLimit, Message: fmt.Sprintf(format, args...)}
}

// limitActivityResult turns the result of an activity that is over the
// payload limit into the task's failure (the orchestrator sees a
// TaskFailedError, as for any failed activity).
func (n *Node) limitActivityResult(ev *history.Event, name string) *history.Event {
	max := n.cfg.Limits.MaxPayloadBytes
	if ev.Type != history.TaskCompleted || max <= 0 || len(ev.Payload) <= max {
		return ev
	}
	return &history.Event{Type: history.TaskFailed, Timestamp: ev.Timestamp, TaskID: ev.TaskID,
		Failure: limitFailure("activity %q returned %d bytes, over the payload limit of %d (Options.MaxPayloadBytes)", name, len(ev.Payload), max)}
}

// limitEntityOutcome fails an entity operation whose new state or result is
// over the payload limit: the operation is rolled back, like any failed one.
func (n *Node) limitEntityOutcome(out orchestration.EntityOutcome, state []byte, hasState bool, op string) orchestration.EntityOutcome {
	max := n.cfg.Limits.MaxPayloadBytes
	if out.Failure != nil || max <= 0 || (len(out.State) <= max && len(out.Result) <= max) {
		return out
	}
	what, size := "state", len(out.State)
	if len(out.Result) > max {
		what, size = "result", len(out.Result)
	}
	return orchestration.EntityOutcome{State: state, HasState: hasState,
		Failure: limitFailure("entity operation %q made a %s of %d bytes, over the payload limit of %d (Options.MaxPayloadBytes)", op, what, size, max)}
}

// limitTurn applies the output and history limits to a turn about to be
// committed. An output over the payload limit fails the instance instead
// of completing it. A turn that would take the history past
// MaxHistoryEvents fails the instance instead: its actions are not
// dispatched, and the failure says to continue as new. Crossing
// HistoryWarnEvents is logged.
func (a *instanceActor) limitTurn(turn *orchestration.Turn) {
	lim := a.node.cfg.Limits
	if turn.Done {
		if max := lim.MaxPayloadBytes; max > 0 && turn.Failure == nil && !turn.ContinuedAsNew && len(turn.Output) > max {
			f := limitFailure("the orchestrator returned an output of %d bytes, over the payload limit of %d (Options.MaxPayloadBytes)", len(turn.Output), max)
			for _, ev := range turn.Events {
				if ev.Type == history.ExecutionCompleted {
					ev.Payload, ev.Failure = nil, f
				}
			}
			turn.Output, turn.Failure = nil, f
		}
		return
	}
	before := int(a.rec.HistoryLen)
	after := before + len(turn.Events)
	if max := lim.MaxHistoryEvents; max > 0 && after > max {
		f := limitFailure("the history of this execution would reach %d events, over the limit of %d (Options.MaxHistoryEvents): "+
			"an orchestration that runs for long should call ContinueAsNew now and then to start a fresh history", after, max)
		turn.Events = append(turn.Events, &history.Event{Type: history.ExecutionCompleted, Timestamp: unixTime(a.now()), Failure: f})
		turn.Actions = nil
		turn.Done, turn.Failure, turn.Output = true, f, nil
		a.logger().Error("instance failed: history too long", "events", after, "limit", max)
		return
	}
	if warn := lim.HistoryWarnEvents; warn > 0 && before < warn && after >= warn {
		a.logger().Warn("long history: replaying it on activation gets slower; call ContinueAsNew now and then",
			"events", after, "fails_at", lim.MaxHistoryEvents)
	}
}

// storeBackoff holds an instance's dispatch back after its commits failed
// because the store could not write: each failure in a row doubles the
// wait (from minStoreRetry to maxStoreRetry); a successful commit ends it.
//
// It is kept small (16 bytes): every instance and entity actor embeds one.
type storeBackoff struct {
	until    int64 // unix nanoseconds
	failures int32
	armed    bool // a storeRetryDue is on its way
}

const (
	minStoreRetry = 50 * time.Millisecond
	maxStoreRetry = 5 * time.Second
)

// storeRetryDue tells the instance that its dispatch may go on.
type storeRetryDue struct{}

func (b *storeBackoff) failed() {
	pause := storeRetryPause(int(b.failures))
	b.failures++
	b.until = time.Now().Add(pause).UnixNano()
}

// storeRetryPause is the pause after the failures+1'th failure in a row of
// a store write: minStoreRetry, doubling, at most maxStoreRetry.
func storeRetryPause(failures int) time.Duration {
	return min(minStoreRetry<<min(failures, 10), maxStoreRetry)
}

func (b *storeBackoff) succeeded() { b.failures, b.until = 0, 0 }

// hold reports whether dispatch must wait, and if so makes sure a
// storeRetryDue wakes the actor when the wait is over.
func (b *storeBackoff) hold(ctx actor.Context) bool {
	if b.failures == 0 {
		return false
	}
	wait := time.Duration(b.until - time.Now().UnixNano())
	if wait <= 0 {
		return false
	}
	if !b.armed {
		b.armed = true
		self, root := ctx.Self(), ctx.ActorSystem().Root
		time.AfterFunc(wait, func() { root.Send(self, &storeRetryDue{}) })
	}
	return true
}

// ErrorTypeCorruptHistory is the ErrorType of the failure of an instance
// whose stored history cannot be decoded.
const ErrorTypeCorruptHistory = "CorruptHistory"

// failCorrupt fails an instance whose history cannot be decoded (damaged
// on disk): its record says so, durably, so that every caller gets a clear
// answer (the status says Failed and why; a write is refused as to any
// finished instance) and recovery stops waking it, while the other
// instances of the partition run on. The history itself stays as it is,
// for whoever repairs it; a purge removes it.
func (a *instanceActor) failCorrupt(ctx actor.Context, decodeErr error) {
	a.logger().Error("instance failed: its history cannot be decoded", "err", decodeErr)
	rec := *a.rec
	rec.Status = persistence.StatusFailed
	rec.Output = nil
	rec.Failure = &persistence.Failure{ErrorType: ErrorTypeCorruptHistory,
		Message: fmt.Sprintf("the stored history cannot be decoded (%v): the instance cannot run; its history is kept as it is on disk in partition %d", decodeErr, a.store.Index())}
	rec.LastUpdatedAt = unixTime(a.now())
	b := &persistence.Batch{}
	b.DeletePendingActivities(a.id)
	b.PutInstanceOver(a.rec, &rec)
	a.commit(ctx, b, nil, recordWritten(&rec), func(err error) {
		if err != nil {
			a.setBroken(fmt.Errorf("load instance %s: %w", a.id, decodeErr))
			return
		}
		a.rec = &rec
		a.finished = true
	})
}
