// Package durable is a durable execution runtime for Go: orchestrations,
// activities and durable entities in the spirit of Azure Durable Functions,
// built as an actor system.
//
// Orchestrations are plain Go functions that call activities; entities are
// addressable objects with durable state and one-at-a-time operations.
// Every orchestration instance and every entity is a persistent actor that
// event-sources its history in an embedded Badger store and rebuilds itself
// by replaying that history after a restart, so instances survive crashes:
//
//	rt, _ := durable.Open(durable.Options{Dir: "data"})
//	rt.RegisterOrchestrator("HelloCities", helloCities)
//	rt.RegisterActivity("Hello", func(ctx context.Context, city string) (string, error) {
//		return "Hello " + city + "!", nil
//	})
//	rt.Start()
//	id, _ := rt.Client().Start(ctx, "HelloCities", nil)
//	st, _ := rt.Client().WaitForCompletion(ctx, id)
//
// Runtime opens the store and runs the node; Client starts instances and
// reads their status and history. Every Client call reaches the partition
// that owns its instance or entity through the partition seam (package
// seam), which the node serves; the Client never reads the store itself.
package durable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/durable-go/durable/actors"
	"github.com/durable-go/durable/cluster"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
	"github.com/durable-go/durable/seam"
)

// Options configure a Runtime. The zero value is an in-memory runtime with
// safe defaults.
type Options struct {
	// Dir is the task hub's directory (created if missing). Empty means an
	// in-memory store that is lost on Close: for tests.
	Dir string
	// Partitions is the number of store partitions of a new hub (default 4).
	// It is fixed at creation; 0 on reopen uses the recorded number, another
	// number is an error.
	Partitions int
	// NoSync relaxes durability: commits no longer wait for the disk, so
	// they survive a crash of the process but the last ones (those of about
	// the last NoSyncInterval) are lost on a power cut or an OS crash.
	// Default false: every acknowledged commit survives a power cut.
	NoSync bool
	// NoSyncInterval (NoSync only; default 1s) is how often each partition
	// syncs its log to disk by itself: the window of commits a power cut
	// can lose. Shorter narrows it at the cost of one fsync per interval
	// per busy partition. (A partition whose 16 MiB memtable fills inside
	// the window has those writes synced when Badger flushes the
	// memtable to a table, normally moments later.)
	NoSyncInterval time.Duration
	// Logger receives the runtime's logs (default slog.Default()).
	Logger *slog.Logger
	// Observer, when set, is told what the node does: instances started
	// and ended, turns, activity executions, commit and fsync latencies,
	// actors entering and leaving memory, timer lag. metrics.New returns
	// one that serves them to Prometheus, tracing.New one that makes
	// OpenTelemetry spans. nil (the default) measures nothing.
	Observer Observer
	// IdleTimeout is how long an instance with nothing to do stays in
	// memory before it is passivated (default 30s). Longer keeps busy
	// instances warm; shorter frees memory sooner.
	IdleTimeout time.Duration
	// MaxConcurrentActivities bounds the activities running at once
	// (default 64 × GOMAXPROCS). Further activities wait for a slot.
	MaxConcurrentActivities int
	// MaxActorsInMemory bounds the instances and entities the node keeps
	// in memory at once (default DefaultMaxActorsInMemory, 100,000;
	// negative: no bound, only IdleTimeout passivates). Past it, the
	// least recently used idle ones (waiting, nothing running, no commit
	// in flight) are passivated early; nothing is lost, their state is in
	// the store and the next message activates them again. Each partition
	// holds its share (the bound divided by the partition count, rounded
	// up; so in a cluster a node holds the shares of the partitions it
	// hosts), and a busy actor is never passivated, so the count can exceed
	// the bound by the actors busy at that moment and, briefly, by those
	// stopping. Stats.InMemory is the count.
	MaxActorsInMemory int
	// MaxPayloadBytes bounds every payload (default 1 MiB): what a client
	// sends (an instance's input, an event, an entity operation's input:
	// ErrPayloadTooLarge, nothing changes), and what code makes (an
	// orchestration's output fails the instance, an activity's result
	// fails that task, an entity operation's new state or result fails
	// and rolls back that operation; each failure's ErrorType is
	// "LimitExceeded" and its message names the limit).
	MaxPayloadBytes int
	// HistoryWarnEvents (default 20,000) is the history length, in events,
	// past which an instance is logged at Warn: its activations replay
	// that much. MaxHistoryEvents (default 200,000) is where a turn fails
	// the instance instead, with a message pointing to ContinueAsNew,
	// before histories grow without bound. A negative value turns either
	// off.
	HistoryWarnEvents, MaxHistoryEvents int
	// CommitFault is for fault-injection tests only (leave it nil): it is
	// asked before each store transaction of a partition commits, and an
	// error fails that transaction as a failed disk write would (the
	// callers get ErrUnavailable, HTTP 503 with Retry-After).
	CommitFault func(partition int) error
	// MinFreeBytes is the free space kept in reserve on the filesystem of
	// each partition (default 64 MiB; negative: none). While there is
	// less, writes fail with ErrUnavailable (HTTP 503 + Retry-After) and
	// nothing else changes; they succeed again by themselves once space is
	// freed. The free space is read every 250 ms and again whenever a
	// quarter of the reserve has been written since, so a reserve larger
	// than what Badger writes on top of a commit (a flushed memtable, a
	// compaction) keeps the disk from filling. Without it a full disk
	// kills the process (Badger writes its logs through memory maps:
	// SIGBUS).
	MinFreeBytes int64
	// Cluster, when set, makes this runtime one node of a cluster that
	// serves the task hub in Dir together (every node gets the same Dir,
	// on storage they all reach, and the same peers): partitions are
	// placed on the nodes and move when a node leaves, and every Client
	// call works from any node. Partitions defaults to 12 for a new hub
	// then, so they spread over a handful of nodes. See CLUSTER.md.
	Cluster *cluster.Config
	// Clock, when set, replaces the system clock for workflow time: event
	// timestamps (what Context.Now returns) and when durable timers fire.
	// For tests; durabletest.Env drives one. Nil: the system clock.
	Clock Clock
}

// Observer is told what a node does, for metrics; see actors.Observer for
// what each method hears and the contract (cheap, concurrent, never
// blocking). Its methods use only standard types.
type Observer = actors.Observer

// ActivityRun is one activity execution, as an Observer hears of it.
type ActivityRun = actors.ActivityRun

// Turn is one durable turn of an instance, as an Observer hears of it.
type Turn = actors.Turn

// DefaultMaxPayloadBytes is the default for Options.MaxPayloadBytes.
const DefaultMaxPayloadBytes = 1 << 20

// DefaultMaxActorsInMemory is the default for Options.MaxActorsInMemory.
// It is as large as the W5 workload's whole set of waiting instances, so
// it changes nothing there (W5's 1 s IdleTimeout passivates them first);
// with the default 30 s IdleTimeout it starts to matter above about 3,300
// activations a second, and it keeps a burst of activations (a recovery,
// a fan-out to many entities) from holding every actor it touched.
const DefaultMaxActorsInMemory = 100_000

// Defaults of Options.HistoryWarnEvents and Options.MaxHistoryEvents.
const (
	DefaultHistoryWarnEvents = 20_000
	DefaultMaxHistoryEvents  = 200_000
)

// Errors callers can test with errors.Is. Those a partition answers are
// declared once, in package seam, and are the same values on every side of
// the seam.
var (
	ErrInstanceNotFound          = seam.ErrInstanceNotFound
	ErrInstanceExists            = seam.ErrInstanceExists
	ErrOrchestratorNotRegistered = seam.ErrOrchestratorNotRegistered
	ErrInvalidInstanceID         = errors.New("invalid instance id")
	ErrInvalidInput              = seam.ErrInvalidInput
	ErrPayloadTooLarge           = errors.New("payload too large")
	ErrNotStarted                = errors.New("runtime is not started")
	ErrClosed                    = errors.New("runtime is closed")
	// ErrUnavailable: the partition of the instance or entity cannot serve
	// now (in a cluster: it is moving, or this node does not see a
	// majority of the members); the request may be sent again later or to
	// another node.
	ErrUnavailable       = seam.ErrUnavailable
	ErrAlreadyRegistered = errors.New("name is already registered")
	// ErrPartitionDown: the partition of the instance or entity is down,
	// its store could not be opened at Open (garbage or truncated files);
	// the error names the partition and its directory. Unlike
	// ErrUnavailable it does not heal by itself: an operator repairs or
	// restores that directory and restarts the node. The other partitions
	// serve meanwhile (NodeStats.PartitionsDown lists the down ones).
	ErrPartitionDown     = seam.ErrPartitionDown
	ErrLocked            = persistence.ErrLocked
	ErrPartitionMismatch = persistence.ErrPartitionMismatch
)

// Runtime is an embedded durable node: the store, the registered functions
// and the actors that run instances.
type Runtime struct {
	opts Options
	log  *slog.Logger
	hub  *persistence.Hub
	reg  *registry

	mu     sync.Mutex
	node   *actors.Node
	parts  seam.Partitions // the node, or in a cluster the member
	member *cluster.Member // nil on a single node
	closed bool
	opened time.Time
}

// Open opens (or creates) the task hub in opts.Dir. Register functions, then
// call Start.
func Open(opts Options) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxPayloadBytes <= 0 {
		opts.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	popts := persistence.Options{
		Dir:            opts.Dir,
		Partitions:     opts.Partitions,
		NoSync:         opts.NoSync,
		NoSyncInterval: opts.NoSyncInterval,
		CommitFault:    opts.CommitFault,
		MinFreeBytes:   opts.MinFreeBytes,
		Logger:         opts.Logger,
	}
	open := persistence.Open
	if opts.Cluster != nil {
		if opts.Dir == "" {
			return nil, fmt.Errorf("open durable runtime: a cluster needs Dir: %w", ErrInvalidInput)
		}
		open = persistence.OpenShared
	}
	hub, err := open(popts)
	if err != nil {
		return nil, fmt.Errorf("open durable runtime: %w", err)
	}
	return &Runtime{opts: opts, log: opts.Logger, hub: hub, reg: newRegistry(), opened: time.Now()}, nil
}

// RegisterOrchestrator registers an orchestrator function under name:
// its only version, or with the Version option one of several (see
// Version and AsDefault).
func (r *Runtime) RegisterOrchestrator(name string, fn orchestration.Orchestrator, opts ...RegisterOption) error {
	if name == "" || fn == nil {
		return fmt.Errorf("register orchestrator %q: %w", name, ErrInvalidInput)
	}
	var o registerOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := validateVersion(o.version); err != nil {
		return fmt.Errorf("register orchestrator %q: %w", name, err)
	}
	return r.reg.addOrchestrator(name, fn, o)
}

// RegisterActivity registers an activity under name. fn must be a function
// of the form
//
//	func(ctx context.Context[, input In]) ([Out, ]error)
//
// In and Out are encoded as JSON. ctx is canceled when the node shuts down
// or the instance is terminated; orchestration.ActivityInfoFrom(ctx) tells
// which task and attempt it runs. A returned error fails the task: its
// failure details carry the error's message and, as ErrorType, the result of
// its ErrorType() string method if it has one (else its Go type), which
// orchestrators and retry predicates can match on.
func (r *Runtime) RegisterActivity(name string, fn any) error {
	if name == "" || fn == nil {
		return fmt.Errorf("register activity %q: %w", name, ErrInvalidInput)
	}
	wire, err := adaptActivity(fn)
	if err != nil {
		return fmt.Errorf("register activity %q: %w", name, err)
	}
	return r.reg.addActivity(name, wire)
}

// Start runs the node: it reactivates every instance that has pending work
// (found from the store's indexes), then serves new requests. With
// CheckRunningFirst it first checks the running instances against the
// registered code and refuses to start if one would fail.
func (r *Runtime) Start(opts ...RuntimeStartOption) error {
	var o runtimeStart
	for _, opt := range opts {
		opt(&o)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.node != nil {
		return nil
	}
	if o.checkRunning {
		report, err := r.checkStore()
		if err != nil {
			return fmt.Errorf("start durable runtime: %w", err)
		}
		if !report.OK() {
			return &ReplayCheckError{Report: report}
		}
	}
	cfg := actors.Config{
		Hub:                     r.hub,
		Registry:                r.reg,
		Logger:                  r.log,
		Observer:                r.opts.Observer,
		IdleTimeout:             r.opts.IdleTimeout,
		MaxConcurrentActivities: r.opts.MaxConcurrentActivities,
		MaxActorsInMemory:       limitOrDefault(r.opts.MaxActorsInMemory, DefaultMaxActorsInMemory),
		Clock:                   r.opts.Clock,
		Limits: actors.Limits{
			MaxPayloadBytes:   r.opts.MaxPayloadBytes,
			HistoryWarnEvents: limitOrDefault(r.opts.HistoryWarnEvents, DefaultHistoryWarnEvents),
			MaxHistoryEvents:  limitOrDefault(r.opts.MaxHistoryEvents, DefaultMaxHistoryEvents),
		},
	}
	if r.opts.Cluster != nil {
		member, err := cluster.Start(*r.opts.Cluster, cfg)
		if err != nil {
			return fmt.Errorf("start durable runtime: %w", err)
		}
		r.member, r.node, r.parts = member, member.Node(), member
		return nil
	}
	node, err := actors.StartNode(cfg)
	if err != nil {
		return fmt.Errorf("start durable runtime: %w", err)
	}
	r.node, r.parts = node, node
	return nil
}

// Ready reports whether the runtime serves requests: started, and in a
// cluster, every partition placed and answering.
func (r *Runtime) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed || r.node == nil:
		return false
	case r.member != nil:
		return r.member.Ready()
	}
	return true
}

// Expelled returns a channel closed once the other members of the cluster
// have dropped this node for good (protoactor's members never let a
// dropped member back in): the node must then be shut down and started
// again to rejoin. It is nil, never closed, on a single node and before
// Start.
func (r *Runtime) Expelled() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.member == nil {
		return nil
	}
	return r.member.Expelled()
}

// Client returns the client of this runtime.
func (r *Runtime) Client() *Client { return &Client{rt: r} }

// Shutdown stops the node gracefully: in-flight commits finish, running
// activities see their context canceled (their results are discarded and
// they run again on the next start), then the store closes. If ctx ends
// first, the store is closed anyway and the error says so.
func (r *Runtime) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	node, member := r.node, r.member
	r.mu.Unlock()
	var errs []error
	switch {
	case member != nil:
		if err := member.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	case node != nil:
		if err := node.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.hub.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	return errors.Join(errs...)
}

// Close is Shutdown without a deadline.
func (r *Runtime) Close() error { return r.Shutdown(context.Background()) }

// partitions returns the seam to the hub's partitions: the running node.
func (r *Runtime) partitions() (seam.Partitions, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if r.node == nil {
		return nil, ErrNotStarted
	}
	return r.parts, nil
}

// isClosed reports whether Shutdown has begun.
func (r *Runtime) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Stats is a snapshot of a running node's in-memory load.
type Stats struct {
	// Actors counts the processes of the node's actor system: partition
	// actors, the instance and entity actors currently in memory (not
	// passivated), running activities, and protoactor's own bookkeeping.
	// Once instances passivate it falls back: it does not grow with the
	// number of instances the node has run.
	Actors int
	// InMemory counts the instance and entity actors in memory, the
	// count Options.MaxActorsInMemory bounds.
	InMemory int
	// Commits counts the batches committed since Open (a turn, a start, an
	// entity operation batch...), and Transactions the store transactions,
	// one fsync each in sync mode, that carried them: Commits/Transactions
	// is how many commits group commit merged per fsync.
	Commits, Transactions int64
	// WaitingForVersion counts the instances this node has loaded and left
	// waiting because it has their orchestrator's name registered but not
	// the version they run (each is logged once, at Warn, as it loads; its
	// status says VersionNotRegistered). A node with that version runs
	// them.
	WaitingForVersion int
}

// Stats reports the node's load. Actors is zero before Start and after
// Shutdown; the commit counters cover the store since Open.
func (r *Runtime) Stats() Stats {
	r.mu.Lock()
	node, closed := r.node, r.closed
	r.mu.Unlock()
	var st Stats
	if closed {
		return st
	}
	for i := 0; i < r.hub.Partitions(); i++ {
		p := r.hub.Partition(i)
		if p == nil {
			continue // in a cluster, hosted elsewhere
		}
		c := p.Stats()
		st.Commits += int64(c.Batches)
		st.Transactions += int64(c.Transactions)
	}
	if node != nil {
		st.Actors = node.Actors()
		st.InMemory = node.InMemory()
		st.WaitingForVersion = node.WaitingForVersion()
	}
	return st
}

// limitOrDefault is v, def for 0, and no limit (0) for a negative v.
func limitOrDefault(v, def int) int {
	switch {
	case v < 0:
		return 0
	case v == 0:
		return def
	}
	return v
}
