// Package actors runs orchestration instances and entities as persistent
// actors on protoactor-go: one partition actor per store partition, which
// routes to and activates the instance and entity actors of its ids (spawned
// beside it and watched, not as its children: see partitionActor.route) and
// runs its durable timers; one activity actor per running activity (a child
// of its instance).
//
// The Node is the in-process side of the partition seam (package seam):
// Node.Call serves every request a client makes, and a *seam.Request sent
// to a partition actor's PID is served the same way (see serve.go).
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
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
	"github.com/durable-go/durable/seam"
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
	// Observer, when set, is told what the node does (metrics, traces).
	Observer Observer
	// Logger receives the node's logs and, at Warn and above, protoactor's.
	Logger *slog.Logger
	// IdleTimeout is how long an instance actor stays in memory with
	// nothing to do before it passivates. Default 30s.
	IdleTimeout time.Duration
	// MaxConcurrentActivities bounds the activities running at once on the
	// node. Default 64 × GOMAXPROCS.
	MaxConcurrentActivities int
	// MaxActorsInMemory bounds the instance and entity actors in memory
	// (0 or negative: no bound). Each partition holds at most its share,
	// MaxActorsInMemory / partitions rounded up; past it, spawning an
	// actor asks the least recently used ones to passivate early, which
	// the idle ones do (a busy one, with a turn, a commit or an activity
	// in flight, stays, and the next is asked). So the count can exceed
	// the bound by the busy actors, and briefly by those stopping.
	MaxActorsInMemory int
	// Now is the clock stamped on new events. Default time.Now, or
	// Clock.Now when Clock is set.
	Now func() time.Time
	// Clock, when set, is the clock of durable timers too (see Clock):
	// for tests. Nil: the system clock.
	Clock Clock
	// Limits bound payloads and histories (zero fields: no limit).
	Limits Limits

	// Cluster mode. System is the actor system to run on (one whose remote
	// and cluster the caller configures; nil: a local one of the node's
	// own). With Remote set, the node hosts only the partitions placed on
	// it (their actors come from PartitionProps, claim their store when
	// they start and release it when they stop), and Remote delivers
	// messages for any other partition to that partition's actor, wherever
	// it runs. Owner names this node in partition ownership records.
	System *actor.ActorSystem
	Remote func(partition int, msg *PartitionMessage)
	Owner  string
	// MayClaim, when set, is asked before a partition actor claims its
	// store; false stops the actor instead (a cluster member that does not
	// see a majority of the members must not take partitions).
	MayClaim func() bool
}

// Node hosts the partition actors of one hub.
type Node struct {
	cfg    Config
	log    *slog.Logger
	system *actor.ActorSystem
	// parts holds the partitions this node hosts, by number (nil: not
	// here): all of them on a single node, those placed on it in a cluster.
	parts []atomic.Pointer[hosted]
	// keepKeys: the actors record the idempotency keys of requests served
	// in-process too. In a cluster a request can be sent again (while its
	// partition moves); on a single node only requests that come by
	// message can.
	keepKeys   bool
	gate       *activityGate
	dispatcher *poolDispatcher // runs partition, instance and entity actors
	// activities counts the activity actors spawned and not yet through
	// their run: Shutdown waits for them.
	activities sync.WaitGroup
	// instanceStrategy supervises every instance and entity actor through
	// one guardian: protoactor keeps a guardian per strategy value for the
	// life of the system, so a strategy made per spawn would leak one
	// guardian per activation.
	instanceStrategy actor.SupervisorStrategy

	// activityCtx is the parent of every activity's context; it is canceled
	// when the node shuts down.
	activityCtx    context.Context
	cancelActivity context.CancelFunc

	// waitingForVersion counts the loaded instances whose orchestrator
	// version is not registered here (see WaitingForVersion).
	waitingForVersion atomic.Int64

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
		if cfg.Clock != nil {
			cfg.Now = cfg.Clock.Now
		}
	}
	n := &Node{cfg: cfg, log: cfg.Logger, gate: newActivityGate(cfg.MaxConcurrentActivities), stopped: make(chan struct{})}
	n.activityCtx, n.cancelActivity = context.WithCancel(context.Background())
	// Enough workers that a busy node rarely falls back to a fresh
	// goroutine (whose stack then grows again): 12 workers on 2 cores fell
	// back often under W5; 64 gave +10% events/s (median of 5 interleaved
	// runs). An idle worker costs one parked goroutine.
	n.dispatcher = newPoolDispatcher(32*runtime.GOMAXPROCS(0), 300)
	n.instanceStrategy = instanceSupervisor()
	n.system = cfg.System
	if n.system == nil {
		n.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return ProtoactorLogger(cfg.Logger) }))
	}
	n.parts = make([]atomic.Pointer[hosted], cfg.Hub.Partitions())
	n.keepKeys = cfg.Remote != nil
	if cfg.Remote == nil {
		for i := 0; i < cfg.Hub.Partitions(); i++ {
			p := cfg.Hub.Partition(i)
			if p == nil {
				continue // down (Hub.DownError): not hosted, its requests fail with why
			}
			idx := i
			h := &hosted{store: p, waiters: newWaiters(), inMemory: new(atomic.Int64)}
			props := actor.PropsFromProducer(func() actor.Actor { return newPartitionActor(n, idx, p, h.inMemory) },
				actor.WithSupervisor(n.instanceStrategy), actor.WithDispatcher(n.dispatcher))
			n.parts[i].Store(h)
			n.observeStore(p)
			pid, err := n.system.Root.SpawnNamed(props, PartitionActorName(i))
			if err != nil {
				n.system.Shutdown()
				return nil, fmt.Errorf("spawn partition %d: %w", i, err)
			}
			h.pid = pid
		}
		if err := n.recover(); err != nil {
			_ = n.Shutdown(context.Background())
			return nil, err
		}
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
			for i := range n.parts {
				// Rewrite files while at least half of one is garbage.
				for h := n.parts[i].Load(); h != nil && h.store.RunValueLogGC(0.5) == nil; {
				}
			}
		}
	}
}

// recover wakes every instance with pending work (activities, inbox
// messages), read from the recovery indexes only.
func (n *Node) recover() error {
	total := 0
	for i := range n.parts {
		if n.parts[i].Load() == nil {
			continue // down
		}
		woken, err := n.recoverPartition(i)
		if err != nil {
			return err
		}
		total += woken
	}
	if total > 0 {
		n.log.Info("recovering instances with pending work", "instances", total)
	}
	return nil
}

// recoverPartition wakes the instances and entities of hosted partition p
// that have pending work, and returns how many.
func (n *Node) recoverPartition(p int) (int, error) {
	h := n.parts[p].Load()
	ids, err := h.store.InstancesWithWork()
	if err != nil {
		return 0, fmt.Errorf("recover partition %d: %w", p, err)
	}
	for _, id := range ids {
		n.system.Root.Send(h.pid, &wake{id: id})
	}
	return len(ids), nil
}

// hosted is a partition this node hosts: its actor, its store and its wait
// subscriptions (with its record of recently finished instances).
type hosted struct {
	pid     *actor.PID
	store   *persistence.Partition
	waiters *waiters
	// inMemory is how many instance and entity actors the partition has
	// in memory (its actor keeps it).
	inMemory *atomic.Int64
}

// InMemory returns how many instance and entity actors the partitions this
// node hosts have in memory: at most about Config.MaxActorsInMemory (see
// there for the slack).
func (n *Node) InMemory() int {
	total := int64(0)
	for i := range n.parts {
		if h := n.parts[i].Load(); h != nil && h.inMemory != nil {
			total += h.inMemory.Load()
		}
	}
	return int(total)
}

// MaxInMemory returns the bound of InMemory (0: none).
func (n *Node) MaxInMemory() int { return n.childrenPerPartition() * n.cfg.Hub.Partitions() }

// childrenPerPartition is each partition's share of MaxActorsInMemory,
// rounded up (0: no bound).
func (n *Node) childrenPerPartition() int {
	max, parts := n.cfg.MaxActorsInMemory, n.cfg.Hub.Partitions()
	if max <= 0 {
		return 0
	}
	return (max + parts - 1) / parts
}

// hostedPartition returns partition p if this node hosts it, else nil.
func (n *Node) hostedPartition(p int) *hosted { return n.parts[p].Load() }

// Hosts reports whether partition p runs on this node.
func (n *Node) Hosts(p int) bool { return n.parts[p].Load() != nil }

// errNotHosted answers a request for a partition this node does not host.
func errNotHosted(p int) error {
	return fmt.Errorf("partition %d is not hosted on this node: %w", p, seam.ErrUnavailable)
}

// notHere answers a request for partition p, which this node does not
// host: the hub's error for a partition that is down (it wraps
// seam.ErrPartitionDown and names the directory), else errNotHosted.
func (n *Node) notHere(p int) error {
	if err := n.cfg.Hub.DownError(p); err != nil {
		return err
	}
	return errNotHosted(p)
}

// clientDeleteReason marks the client's delete, which bypasses entity code.
const clientDeleteReason = "client-delete"

// send routes msg to the actor of id, through the partition that owns id.
func (n *Node) send(id string, msg routed) error {
	return n.sendTo(n.cfg.Hub.PartitionOf(id), msg)
}

// sendTo hands msg to partition p's actor: here, or through Config.Remote
// on the node that hosts it.
func (n *Node) sendTo(p int, msg routed) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.stopping {
		return errShuttingDown
	}
	if h := n.parts[p].Load(); h != nil {
		n.system.Root.Send(h.pid, msg)
		return nil
	}
	if n.cfg.Remote == nil {
		return n.notHere(p)
	}
	w, ok := toWire(msg)
	if !ok {
		return fmt.Errorf("%T for %s cannot leave this node: %w", msg, msg.instanceID(), errNotHosted(p))
	}
	n.cfg.Remote(p, w)
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
		for i := range n.parts {
			if h := n.parts[i].Load(); h != nil {
				_ = n.system.Root.StopFuture(h.pid).Wait()
			}
		}
		n.activities.Wait()
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shut down node: %w", ctx.Err())
	}
	if n.cfg.System == nil {
		n.system.Shutdown() // the caller's system is the caller's to shut down
	}
	n.dispatcher.close()
	for i := range n.parts {
		if h := n.parts[i].Load(); h != nil {
			h.waiters.closeAll()
		}
	}
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

// ProtoactorLogger is the logger protoactor gets: the node's, at Warn and
// above (protoactor is chatty below), marked lib=protoactor.
func ProtoactorLogger(log *slog.Logger) *slog.Logger {
	return slog.New(minLevelHandler{min: slog.LevelWarn, inner: log.Handler()}).With("lib", "protoactor")
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
