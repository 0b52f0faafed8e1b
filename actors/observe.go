package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
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
// from the engine's own paths (actor goroutines, the committing goroutine),
// so they must be cheap, safe for concurrent use, and must not block. With
// Config.Observer nil nothing is measured: each hook is one nil check.
type Observer interface {
	// InstanceStarted: the start of an instance of orchestrator name is
	// durable.
	InstanceStarted(name string)
	// InstanceEnded: an instance of name ended with status (Completed,
	// Failed or Terminated), durably.
	InstanceEnded(name, status string)
	// ActivityDone: one execution of activity name returned after took;
	// attempt counts from 1 (more is a retry of a failed execution).
	ActivityDone(name string, took time.Duration, failed bool, attempt int)
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

// observeTurn reports what a durable instance commit changed: a start,
// an end.
func (a *instanceActor) observeTurn(start bool, prev, rec *persistence.InstanceRecord) {
	o := a.node.cfg.Observer
	if o == nil {
		return
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

// timedCommit wraps a commit's durable callback to report its latency.
func (n *Node) timedCommit(durable func(error)) func(error) {
	o := n.cfg.Observer
	if o == nil {
		return durable
	}
	began := time.Now()
	return func(err error) {
		o.TurnCommitted(time.Since(began), err)
		durable(err)
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
func (n *Node) observeActivity(name string, began time.Time, result *history.Event, attempt int) {
	if o := n.cfg.Observer; o != nil {
		o.ActivityDone(name, time.Since(began), result.Type == history.TaskFailed, attempt)
	}
}
