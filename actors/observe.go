package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// ActivityLoad is what the node's activity slots are doing.
type ActivityLoad struct {
	// Running counts the activities holding a slot, Slots the bound
	// (Config.MaxConcurrentActivities).
	Running, Slots int
	// Waiting counts the instances waiting for a slot to free.
	Waiting int
}

// Activities reports the load on the node's activity slots.
func (n *Node) Activities() ActivityLoad {
	slots := n.cfg.MaxConcurrentActivities
	running, waiting := n.gate.load(slots)
	return ActivityLoad{Running: running, Slots: slots, Waiting: waiting}
}

// Observer is told what the node does, for metrics. Its methods are called
// from the engine's own paths (actor goroutines, commit callbacks),
// so they must be cheap, safe for concurrent use, and must not block. With
// Config.Observer nil nothing is measured: each hook is one nil check.
type Observer interface {
	// InstanceStarted: the start of an instance of orchestrator name is
	// durable.
	InstanceStarted(name string)
	// InstanceEnded: an instance of name ended with status (Completed,
	// Failed or Terminated), durably.
	InstanceEnded(name, status string)
	// ActivityDone: one execution of an activity returned.
	ActivityDone(run ActivityRun)
	// TurnDone: a turn of an instance (its code run on new events, then
	// the commit of what it did) is durable.
	TurnDone(turn Turn)
	// TurnCommitted: an instance's commit (a start, a turn, a control)
	// answered after took, err nil once durable.
	TurnCommitted(took time.Duration, err error)
	// StoreCommitted: a store transaction of partition committed batches
	// (commits of instances and entities) in took: its fsync in sync mode.
	StoreCommitted(partition int, took time.Duration, batches int)
	// ActorStarted and ActorStopped: an instance or entity actor (kind
	// "instance" or "entity") came into memory, or left it (passivated,
	// or the node stopped).
	ActorStarted(kind string)
	ActorStopped(kind string)
	// TimerFired: a durable timer reached its instance lag after it was
	// due.
	TimerFired(lag time.Duration)
}

// ActivityRun is one execution of an activity, as an Observer hears of it.
type ActivityRun struct {
	// InstanceID and Name: the instance that scheduled it, and the
	// activity's name.
	InstanceID, Name string
	// TraceParent is the instance's W3C trace context ("" if none).
	TraceParent string
	// Began and Took: when it started, and how long it ran.
	Began time.Time
	Took  time.Duration
	// Failed: it returned an error (or panicked). Attempt counts from 1;
	// more is a retry of a failed execution.
	Failed  bool
	Attempt int
}

// Turn is one durable turn of an instance, as an Observer hears of it.
type Turn struct {
	// InstanceID and Name: the instance and its orchestrator.
	InstanceID, Name string
	// TraceParent is the instance's W3C trace context ("" if none).
	TraceParent string
	// Began is when the turn started running the code; Took runs until
	// its commit was durable.
	Began time.Time
	Took  time.Duration
	// Status is the instance's runtime status after the turn; Events the
	// number of history events it added.
	Status string
	Events int
}

// traceParentOf is the trace context of a history: its ExecutionStarted's.
func traceParentOf(events []*history.Event) string {
	for _, ev := range events {
		if ev.Type == history.ExecutionStarted {
			return ev.TraceParent
		}
	}
	return ""
}

// Actor kinds an Observer hears of.
const (
	KindInstance = "instance"
	KindEntity   = "entity"
)

// observeStore has the node's observer told of store's commits.
func (n *Node) observeStore(store *persistence.Partition) {
	if o := n.cfg.Observer; o != nil {
		idx := store.Index()
		store.ObserveCommits(func(took time.Duration, batches int) { o.StoreCommitted(idx, took, batches) })
	}
}

// observeActor reports an instance or entity actor's arrival in memory
// (Started) and departure (Stopping, or Restarting, which a Started
// follows).
func (n *Node) observeActor(ctx actor.Context, kind string) {
	o := n.cfg.Observer
	if o == nil {
		return
	}
	switch ctx.Message().(type) {
	case *actor.Started:
		o.ActorStarted(kind)
	case *actor.Stopping, *actor.Restarting:
		o.ActorStopped(kind)
	}
}

// observeTurn reports a durable turn (nil for a control, which runs no
// code) and what it changed: a start, an end.
func (a *instanceActor) observeTurn(start bool, prev, rec *persistence.InstanceRecord, turn *orchestration.Turn) {
	o := a.node.cfg.Observer
	if o == nil {
		return
	}
	if turn != nil && len(turn.Events) > 0 {
		// A turn's first event is its OrchestratorStarted marker: the time
		// the turn began.
		began := turn.Events[0].Timestamp
		o.TurnDone(Turn{InstanceID: a.id, Name: rec.Name, TraceParent: a.traceParent, Began: began,
			Took: max(a.node.cfg.Now().Sub(began), 0), Status: rec.Status.String(), Events: len(turn.Events)})
	}
	if start {
		o.InstanceStarted(rec.Name)
	}
	switch rec.Status {
	case persistence.StatusCompleted, persistence.StatusFailed, persistence.StatusTerminated:
		if start || prev == nil || prev.Status != rec.Status {
			o.InstanceEnded(rec.Name, rec.Status.String())
		}
	}
}

// commitBegan is the start time of an instance commit, when someone
// measures it.
func (n *Node) commitBegan() time.Time {
	if n.cfg.Observer == nil {
		return time.Time{}
	}
	return time.Now()
}

// observeCommit reports an instance commit's latency (runs on the
// goroutine that learned of it: see inflightCommit).
func (n *Node) observeCommit(began time.Time, err error) {
	if o := n.cfg.Observer; o != nil {
		o.TurnCommitted(time.Since(began), err)
	}
}

// observeTimer reports how late a timer reached its instance.
func (n *Node) observeTimer(due time.Time) {
	if o := n.cfg.Observer; o != nil {
		o.TimerFired(n.cfg.Now().Sub(due))
	}
}

// activityBegan is the start time of an activity execution, when someone
// measures it.
func (n *Node) activityBegan() time.Time {
	if n.cfg.Observer == nil {
		return time.Time{}
	}
	return time.Now()
}

// observeActivity reports an activity execution's outcome.
func (n *Node) observeActivity(a *activityActor, began time.Time, result *history.Event) {
	if o := n.cfg.Observer; o != nil {
		o.ActivityDone(ActivityRun{InstanceID: a.instanceID, Name: a.scheduled.Name, TraceParent: a.traceParent,
			Began: began, Took: time.Since(began), Failed: result.Type == history.TaskFailed, Attempt: a.attempt})
	}
}
