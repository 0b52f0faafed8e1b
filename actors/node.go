// Package actors runs orchestration instances as persistent actors on
// protoactor-go: one partition actor per store partition, one instance actor
// per active instance (a child of its partition), one activity actor per
// running activity (a child of its instance).
//
// An instance actor rebuilds its execution on activation by replaying its
// history from the store before it handles any other message, keeps the
// running orchestrator in memory between events, commits each turn in one
// transaction, dispatches the turn's actions only after that commit, and
// passivates when idle. It is the only writer of its instance.
//
// This package is the only one that knows protoactor's local API.
package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// ActivityFunc is an activity in its wire form: JSON input in, JSON output
// out. A returned error fails the task.
type ActivityFunc func(ctx context.Context, input []byte) ([]byte, error)

// Registry finds the functions a node runs, by registered name.
type Registry interface {
	Orchestrator(name string) (orchestration.Orchestrator, bool)
	Activity(name string) (ActivityFunc, bool)
	// Entity finds an entity by its lower-cased name.
	Entity(name string) (orchestration.EntityFunc, bool)
}

// Config configures a Node.
type Config struct {
	Hub      *persistence.Hub
	Registry Registry
	// Logger receives the node's logs and, at Warn and above, protoactor's.
	Logger *slog.Logger
	// IdleTimeout is how long an instance actor stays in memory with
	// nothing to do before it passivates. Default 30s.
	IdleTimeout time.Duration
	// MaxConcurrentActivities bounds the activities running at once on the
	// node. Default 64 × GOMAXPROCS.
	MaxConcurrentActivities int
	// OnRecord is called after each commit that writes an instance's
	// record, with the committed record, and with nil after a purge
	// deletes it. It is called before the requests the commit answers are
	// answered, in commit order per instance. It must not block.
	OnRecord func(id string, rec *persistence.InstanceRecord)
	// Now is the clock stamped on new events. Default time.Now.
	Now func() time.Time
}

// ErrInstanceExists is returned when starting an instance id that is
// pending, running or suspended.
var ErrInstanceExists = errors.New("an instance with this id is still running")

// ErrInstanceNotFound is returned for operations on an unknown instance.
var ErrInstanceNotFound = errors.New("instance not found")

// ErrInstanceCompleted is returned for operations that need a live instance
// (raise event, terminate, suspend, resume) on one that has completed,
// failed or been terminated.
var ErrInstanceCompleted = errors.New("instance is completed")

// ErrInstanceNotCompleted is returned for operations that need a finished
// instance (purge) on one that is still pending, running or suspended.
var ErrInstanceNotCompleted = errors.New("instance is not completed")

// ErrNotFailed is returned when rewinding an instance that has not failed.
var ErrNotFailed = errors.New("instance has not failed")

// ErrShuttingDown is returned for requests made while the node stops.
var ErrShuttingDown = errors.New("node is shutting down")

// Node hosts the partition actors of one hub.
type Node struct {
	cfg        Config
	log        *slog.Logger
	system     *actor.ActorSystem
	partitions []*actor.PID
	gate       *activityGate
	dispatcher *poolDispatcher // runs instance and entity actors
	// instanceStrategy supervises every instance and entity actor through
	// one guardian: protoactor keeps a guardian per strategy value for the
	// life of the system, so a strategy made per spawn would leak one
	// guardian per activation.
	instanceStrategy actor.SupervisorStrategy

	// activityCtx is the parent of every activity's context; it is canceled
	// when the node shuts down.
	activityCtx    context.Context
	cancelActivity context.CancelFunc

	mu       sync.RWMutex // send reads, Shutdown writes
	stopping bool
	stopped  chan struct{} // closed when Shutdown begins

	maintenanceDone chan struct{}
}

// StartNode spawns the partition actors and recovers every instance that has
// pending work, found from the store's indexes.
func StartNode(cfg Config) (*Node, error) {
	if cfg.Hub == nil || cfg.Registry == nil {
		return nil, errors.New("start node: Hub and Registry are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.MaxConcurrentActivities <= 0 {
		cfg.MaxConcurrentActivities = 64 * runtime.GOMAXPROCS(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnRecord == nil {
		cfg.OnRecord = func(string, *persistence.InstanceRecord) {}
	}
	n := &Node{cfg: cfg, log: cfg.Logger, gate: newActivityGate(cfg.MaxConcurrentActivities), stopped: make(chan struct{})}
	n.activityCtx, n.cancelActivity = context.WithCancel(context.Background())
	// Enough workers that a busy node rarely falls back to a fresh
	// goroutine (whose stack then grows again): 12 workers on 2 cores fell
	// back often under W5; 64 gave +10% events/s (median of 5 interleaved
	// runs). An idle worker costs one parked goroutine.
	n.dispatcher = newPoolDispatcher(32*runtime.GOMAXPROCS(0), 300)
	n.instanceStrategy = instanceSupervisor()
	protoLogger := slog.New(minLevelHandler{min: slog.LevelWarn, inner: cfg.Logger.Handler()}).With("lib", "protoactor")
	n.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return protoLogger }))
	for i := 0; i < cfg.Hub.Partitions(); i++ {
		p := cfg.Hub.Partition(i)
		idx := i
		props := actor.PropsFromProducer(func() actor.Actor { return newPartitionActor(n, idx, p) },
			actor.WithSupervisor(n.instanceStrategy))
		pid, err := n.system.Root.SpawnNamed(props, fmt.Sprintf("partition-%d", i))
		if err != nil {
			n.system.Shutdown()
			return nil, fmt.Errorf("spawn partition %d: %w", i, err)
		}
		n.partitions = append(n.partitions, pid)
	}
	if err := n.recover(); err != nil {
		_ = n.Shutdown(context.Background())
		return nil, err
	}
	n.maintenanceDone = make(chan struct{})
	go n.maintain()
	return n, nil
}

// valueLogGCInterval is how often the node reclaims value-log space: Badger
// never does it by itself.
const valueLogGCInterval = 5 * time.Minute

// maintain runs the store's periodic upkeep until the node stops.
func (n *Node) maintain() {
	defer close(n.maintenanceDone)
	tick := time.NewTicker(valueLogGCInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.stopped:
			return
		case <-tick.C:
			for i := 0; i < n.cfg.Hub.Partitions(); i++ {
				// Rewrite files while at least half of one is garbage.
				for n.cfg.Hub.Partition(i).RunValueLogGC(0.5) == nil {
				}
			}
		}
	}
}

// recover wakes every instance with pending work (activities, inbox
// messages), read from the recovery indexes only.
func (n *Node) recover() error {
	total := 0
	for i, pid := range n.partitions {
		ids, err := n.cfg.Hub.Partition(i).InstancesWithWork()
		if err != nil {
			return fmt.Errorf("recover partition %d: %w", i, err)
		}
		for _, id := range ids {
			n.system.Root.Send(pid, &wake{id: id})
		}
		total += len(ids)
	}
	if total > 0 {
		n.log.Info("recovering instances with pending work", "instances", total)
	}
	return nil
}

// StartRequest asks for a new instance.
type StartRequest struct {
	InstanceID string
	Name       string
	Input      []byte
	// Set when a parent orchestration starts this instance as its
	// sub-orchestration.
	ParentInstanceID  string
	ParentExecutionID string
	ParentTaskID      int64
}

// StartInstance creates the instance and returns once its creation is
// durable. The instance then runs on its own.
func (n *Node) StartInstance(ctx context.Context, req StartRequest) error {
	return n.request(ctx, req.InstanceID, "start instance", func(reply chan error) routed {
		return &startInstance{req: req, reply: reply}
	})
}

// RaiseEvent delivers an external event to an instance and returns once it
// is durable in the instance's history.
func (n *Node) RaiseEvent(ctx context.Context, id, name string, payload []byte) error {
	return n.request(ctx, id, "raise event", func(reply chan error) routed {
		return &raiseEvent{id: id, name: name, payload: payload, reply: reply}
	})
}

// Control operations on an instance.
const (
	OpTerminate = "terminate"
	OpSuspend   = "suspend"
	OpResume    = "resume"
	OpPurge     = "purge"
	OpRewind    = "rewind"
)

// Control applies a management operation (OpTerminate, ...) to an instance
// and returns once its effect is durable.
func (n *Node) Control(ctx context.Context, id, op, reason string) error {
	return n.request(ctx, id, op, func(reply chan error) routed {
		return &control{id: id, op: op, reason: reason, reply: reply}
	})
}

// SignalEntity sends a one-way operation to an entity and returns once it
// is durable (applied, or queued behind a lock).
func (n *Node) SignalEntity(ctx context.Context, id orchestration.EntityID, op string, input []byte) error {
	target := id.String()
	return n.request(ctx, target, "signal entity", func(reply chan error) routed {
		return &delivery{target: target, reply: reply, msg: &history.Event{
			Type: history.EntityOperationSignaled, InstanceID: target, Name: op, Payload: input,
		}}
	})
}

// DeleteEntity deletes an entity's state (whatever its code would do with a
// "delete" operation) and returns once that is durable.
func (n *Node) DeleteEntity(ctx context.Context, id orchestration.EntityID) error {
	target := id.String()
	return n.request(ctx, target, "delete entity", func(reply chan error) routed {
		return &delivery{target: target, reply: reply, msg: &history.Event{
			Type: history.EntityOperationSignaled, InstanceID: target, Name: "delete", Reason: clientDeleteReason,
		}}
	})
}

// clientDeleteReason marks the client's delete, which bypasses entity code.
const clientDeleteReason = "client-delete"

// request sends a routed message carrying a reply channel and waits for the
// answer, the end of ctx, or the node's shutdown.
func (n *Node) request(ctx context.Context, id, what string, build func(reply chan error) routed) error {
	reply := make(chan error, 1)
	if err := n.send(id, build(reply)); err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-n.stopped:
		// The actor may still answer if its commit was in flight.
		select {
		case err := <-reply:
			return err
		case <-time.After(time.Second):
			return fmt.Errorf("%s %s: %w", what, id, ErrShuttingDown)
		}
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", what, id, ctx.Err())
	}
}

func (n *Node) send(id string, msg routed) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.stopping {
		return ErrShuttingDown
	}
	n.system.Root.Send(n.partitions[n.cfg.Hub.PartitionOf(id)], msg)
	return nil
}

// Actors returns how many processes the node's actor system has registered:
// partition actors, instance and entity actors in memory, running activity
// actors, and protoactor's own (guardians, futures). An idle node's count
// does not grow with the number of instances it has run.
func (n *Node) Actors() int {
	total := 0
	for _, bucket := range n.system.ProcessRegistry.LocalPIDs.LocalPIDs {
		total += bucket.Count()
	}
	return total
}

// Shutdown stops every actor after its in-flight commit, cancels the
// contexts of running activities (their results are then discarded: the
// pending-activity index re-dispatches them on the next start) and waits for
// them to return, or for ctx to end.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	if n.stopping {
		n.mu.Unlock()
		return nil
	}
	n.stopping = true
	close(n.stopped)
	n.mu.Unlock()
	n.cancelActivity()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, pid := range n.partitions {
			_ = n.system.Root.StopFuture(pid).Wait()
		}
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shut down node: %w", ctx.Err())
	}
	n.system.Shutdown()
	n.dispatcher.close()
	if n.maintenanceDone != nil {
		<-n.maintenanceDone
	}
	return err
}

// instanceSupervisor restarts an instance actor that panicked (a bug in
// this package, since user code runs under recover): the restart reloads
// the instance from the store. A crash loop stops it; the instance stays on
// disk and is recovered on the next start.
func instanceSupervisor() actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(5, 10*time.Second, func(reason any) actor.Directive {
		return actor.RestartDirective
	})
}

// minLevelHandler drops records below min.
type minLevelHandler struct {
	min   slog.Level
	inner slog.Handler
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.inner.Enabled(ctx, l)
}
func (h minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.min {
		return nil
	}
	return h.inner.Handle(ctx, r)
}
func (h minLevelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevelHandler{min: h.min, inner: h.inner.WithAttrs(a)}
}
func (h minLevelHandler) WithGroup(g string) slog.Handler {
	return minLevelHandler{min: h.min, inner: h.inner.WithGroup(g)}
}
