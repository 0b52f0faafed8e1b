package actors

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

// ErrorTypeActivityNotRegistered is the ErrorType of a task whose activity
// name the node does not know.
const ErrorTypeActivityNotRegistered = "ActivityNotRegistered"

// activityStrategy, the guardian of activity actors, stops one that fails
// instead of restarting it: the instance schedules retries itself,
// durably. One value serves every activity, so a spawn allocates no
// strategy.
var activityStrategy = actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })

// activityActor runs one activity once, reports its outcome to its instance
// and stops. It holds one of the node's activity slots from its spawn until
// it has run. It is spawned from the root, not as the instance's child:
// a child is added to its parent's set of children and its stop comes back
// to the parent as a Terminated message, work an instance does not need
// (it knows its running activities itself, and its own stop waits for
// none of them: Node.Shutdown does, through Node.activities).
type activityActor struct {
	node        *Node
	instance    *actor.PID      // where the outcome goes
	ctx         context.Context // canceled on node shutdown or instance termination
	instanceID  string
	executionID string
	scheduled   *history.Event
	attempt     int
	traceParent string // the instance's
}

func (a *activityActor) Receive(ctx actor.Context) {
	began := a.node.activityBegan()
	if _, ok := ctx.Message().(*actor.Started); !ok {
		return
	}
	defer a.node.activities.Done()
	result := a.node.limitActivityResult(a.run(), a.scheduled.Name)
	a.node.gate.release()
	a.node.observeActivity(a, began, result)
	if a.node.activityCtx.Err() != nil {
		// Shutting down: the result may be an artefact of the canceled
		// context. Drop it; the pending-activity index re-dispatches the
		// task on the next start.
		ctx.Stop(ctx.Self())
		return
	}
	ctx.Send(a.instance, &activityResult{from: ctx.Self(), executionID: a.executionID, event: result})
	ctx.Stop(ctx.Self())
}

func (a *activityActor) run() (result *history.Event) {
	ev := a.scheduled
	fail := func(f *history.Failure) *history.Event {
		return &history.Event{Type: history.TaskFailed, Timestamp: a.node.cfg.Now().UTC(), TaskID: ev.TaskID, Failure: f}
	}
	fn, ok := a.node.cfg.Registry.Activity(ev.Name)
	if !ok {
		return fail(&history.Failure{ErrorType: ErrorTypeActivityNotRegistered, Message: fmt.Sprintf("activity %q is not registered", ev.Name)})
	}
	defer func() {
		if r := recover(); r != nil {
			result = fail(&history.Failure{ErrorType: orchestration.ErrorTypePanic, Message: fmt.Sprint(r), StackTrace: string(debug.Stack())})
		}
	}()
	ctx := orchestration.WithActivityInfo(a.ctx, orchestration.ActivityInfo{
		InstanceID: a.instanceID, Name: ev.Name, TaskID: ev.TaskID, Attempt: a.attempt,
	})
	out, err := fn(ctx, ev.Payload)
	var reported *history.Failure
	if errors.As(err, &reported) && reported != nil {
		return fail(reported) // a remote worker's failure, kept whole
	}
	if err != nil {
		return fail(&history.Failure{ErrorType: errorType(err), Message: err.Error()})
	}
	return &history.Event{Type: history.TaskCompleted, Timestamp: a.node.cfg.Now().UTC(), TaskID: ev.TaskID, Payload: out}
}

// errorType names an activity error's type: its ErrorType method if it has
// one, else its Go type.
func errorType(err error) string {
	if t, ok := err.(interface{ ErrorType() string }); ok {
		return t.ErrorType()
	}
	return fmt.Sprintf("%T", err)
}
