package actors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/persistence"
	"github.com/durable-go/durable/seam"
)

// child is the partition's view of one instance actor. While the actor is
// stopping, messages for its instance wait in buffer and go to a fresh
// actor once the old one has terminated: an instance never has two actors
// (two writers) at once.
type child struct {
	pid      *actor.PID
	stopping bool
	buffer   []routed
	// prev and next link the partition's children from the most recently
	// routed to (lru.next) to the least (lru.prev): see evict.
	prev, next *child
	// refused is the partition's spawn count when this child last
	// refused to passivate (busy): evict asks it again only after the
	// next spawn.
	refused uint64
}

// partitionActor owns the instance actors of one store partition and its
// durable timers.
type partitionActor struct {
	node  *Node
	index int
	store *persistence.Partition
	// identify is set on a cluster node: the actor learns its partition
	// from it once started, and claims that partition's store (claimed).
	identify func(actor.Context) (int, error)
	claimed  *hosted
	// down is set on a cluster node when the claim found the store
	// damaged (persistence.ErrPartitionDown): the actor stays, placed
	// here, and answers every request with the hub's DownError.
	down     bool
	children map[string]*child
	byPID    map[string]string // pid id -> instance id

	// The count bound (Config.MaxActorsInMemory): at most maxChildren
	// instance and entity actors in memory (0: no bound), kept by
	// passivating the least recently routed idle ones early. lru is the
	// sentinel of the recency list, spawns counts spawns (see
	// child.refused), inMemory publishes len(children) to the node.
	maxChildren int
	lru         child
	spawns      uint64
	inMemory    *atomic.Int64

	// The timer scheduler: one OS timer armed for the earliest due entry
	// of the due-timer index. Fired entries stay in the index until their
	// instance commits the TimerFired event; until then they are not sent
	// again (unless resendAfter passes, in case the message was lost).
	stopTimer func() bool // nil until armed
	timerAt   time.Time
	fired     map[timerRef]time.Time
}

const (
	timerScanBatch = 1000
	resendAfter    = 30 * time.Second
)

func newPartitionActor(n *Node, index int, store *persistence.Partition, inMemory *atomic.Int64) *partitionActor {
	p := &partitionActor{
		node: n, index: index, store: store,
		children: map[string]*child{}, byPID: map[string]string{},
		fired: map[timerRef]time.Time{}, maxChildren: n.childrenPerPartition(), inMemory: inMemory,
	}
	p.lru.prev, p.lru.next = &p.lru, &p.lru
	return p
}

func (p *partitionActor) Receive(ctx actor.Context) {
	if p.down {
		p.serveDown(ctx)
		return
	}
	if p.store == nil {
		// A cluster's partition before its claim: nothing but starting
		// makes sense, and a failed claim stops the actor.
		if _, ok := ctx.Message().(*actor.Started); !ok {
			return
		}
		if !p.claim(ctx) {
			return
		}
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		p.scanTimers(ctx)
	case routed:
		p.route(ctx, msg)
	case *seam.Request:
		p.serveRemote(ctx, msg)
	case *PartitionMessage:
		// Acknowledged once routed here, the owner: the sending node
		// sends it again until then (it may have gone to a stale
		// placement). One that cannot be decoded never will be: it is
		// acknowledged and dropped.
		if m, err := fromWire(msg); err != nil {
			p.node.log.Warn("dropping a message from another node", "partition", p.index, "err", err)
		} else {
			p.route(ctx, m)
		}
		if ctx.Sender() != nil {
			ctx.Respond(seam.Failed(nil))
		}
	case *partitionFenced:
		p.node.log.Warn("partition ownership moved to another node: stopping it here", "partition", p.index)
		ctx.Stop(ctx.Self())
	case *timerScheduled:
		if p.timerAt.IsZero() || msg.due.Before(p.timerAt) {
			p.arm(ctx, msg.due)
		}
	case *timerDeleted:
		delete(p.fired, msg.ref)
	case *timerTick:
		p.timerAt = time.Time{}
		p.scanTimers(ctx)
	case *passivateRequest:
		c, ok := p.children[msg.id]
		if ok && !c.stopping && c.pid.Equal(msg.pid) {
			c.stopping = true
			ctx.Send(c.pid, &passivateNow{})
		}
	case *stayActive:
		if c, ok := p.children[msg.id]; ok && c.stopping {
			c.stopping = false
			c.refused = p.spawns
			for _, m := range c.buffer {
				ctx.Send(c.pid, m)
			}
			c.buffer = nil
			p.evict(nil) // it was busy: ask the next least recent one instead
		}
	case *actorStopped:
		id, ok := p.byPID[msg.pid.Id]
		if !ok {
			return
		}
		delete(p.byPID, msg.pid.Id)
		c := p.children[id]
		delete(p.children, id)
		if c != nil {
			c.unlink()
		}
		p.inMemory.Store(int64(len(p.children)))
		if c != nil && len(c.buffer) > 0 {
			for _, m := range c.buffer {
				p.route(ctx, m)
			}
		}
	case *actor.Stopping:
		if p.stopTimer != nil {
			p.stopTimer()
		}
		// The instance and entity actors are not children (see route):
		// stop them here, after their in-flight commits, and wait.
		root := ctx.ActorSystem().Root
		var stopping []*actor.Future
		for _, c := range p.children {
			stopping = append(stopping, root.StopFuture(c.pid))
		}
		for _, f := range stopping {
			_ = f.Wait()
		}
		p.inMemory.Store(0)
		p.release()
	}
}

// partitionFenced: the store learned that another node claimed the
// partition.
type partitionFenced struct{}

// claimTimeout bounds a claim: an old owner that is alive notices the new
// epoch within the store's check interval and closes; a dead one holds no
// lock.
const claimTimeout = 30 * time.Second

// claim learns which partition this actor is, claims its store (fencing out
// any previous owner), registers it with the node and recovers its pending
// work. On failure the actor stops: the cluster places the partition again
// on the next request.
func (p *partitionActor) claim(ctx actor.Context) bool {
	n := p.node
	index, err := p.identify(ctx)
	if err != nil || index < 0 || index >= len(n.parts) {
		n.log.Error("a partition actor without a valid partition", "err", err, "index", index)
		ctx.Stop(ctx.Self())
		return false
	}
	p.index = index
	if n.cfg.MayClaim != nil && !n.cfg.MayClaim() {
		n.log.Warn("not claiming partition: this node does not see a majority of the cluster", "partition", index)
		ctx.Stop(ctx.Self())
		return false
	}
	cctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	store, err := n.cfg.Hub.Claim(cctx, index, n.cfg.Owner)
	if errors.Is(err, persistence.ErrPartitionDown) {
		// Another node would fail the same way (one shared directory):
		// stay placed here and say why, instead of being placed again
		// on every request.
		p.down = true
		return false
	}
	if err != nil {
		n.log.Error("claim partition", "partition", index, "err", err)
		ctx.Stop(ctx.Self())
		return false
	}
	p.store = store
	h := &hosted{pid: ctx.Self(), store: store, waiters: newWaiters(), inMemory: p.inMemory}
	p.claimed = h
	n.parts[index].Store(h)
	n.observeStore(store)
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		<-store.Fenced()
		root.Send(self, &partitionFenced{})
	}()
	woken, err := n.recoverPartition(index)
	if err != nil {
		n.log.Error("recover partition", "partition", index, "err", err)
	}
	n.log.Info("partition claimed", "partition", index, "epoch", store.Epoch(), "recovering", woken)
	return true
}

// release gives up a claimed partition: unregistered from the node, its
// waiters told to subscribe again elsewhere, its store closed for the next
// owner.
func (p *partitionActor) release() {
	h := p.claimed
	if h == nil {
		return
	}
	p.claimed = nil
	p.node.parts[p.index].CompareAndSwap(h, nil)
	h.waiters.closeAll()
	if err := p.node.cfg.Hub.Release(p.index); err != nil {
		p.node.log.Warn("release partition", "partition", p.index, "err", err)
	}
}

// PartitionProps returns the props of the actor of a partition placed on
// this node by a cluster: identify tells the actor, once started, which
// partition it is (from its cluster identity); it claims that partition's
// store before it handles any other message, hosts its instance and entity
// actors, and releases the store when it stops (moved, or fenced out).
func (n *Node) PartitionProps(identify func(actor.Context) (int, error)) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		p := newPartitionActor(n, -1, nil, new(atomic.Int64))
		p.identify = identify
		return p
	}, actor.WithSupervisor(n.instanceStrategy), actor.WithDispatcher(n.dispatcher))
}

func (p *partitionActor) route(ctx actor.Context, msg routed) {
	id := msg.instanceID()
	c, ok := p.children[id]
	if !ok {
		self := ctx.Self()
		producer := func() actor.Actor { return newInstanceActor(p.node, self, p.store, id) }
		if s, isStart := msg.(*startInstance); isStart && s.fresh {
			producer = func() actor.Actor {
				a := newInstanceActor(p.node, self, p.store, id)
				a.fresh = true
				return a
			}
		}
		if isEntityID(id) {
			producer = func() actor.Actor { return newEntityActor(p.node, self, p.store, id) }
		}
		// Spawned from the root rather than as children: protoactor's child
		// set keeps a stopped child's PID (and so the whole dead actor)
		// reachable in its backing array, which would hold on to every
		// passivated instance. Not watched either: the actor reports its
		// own stop (actorStopped).
		props := actor.PropsFromProducer(producer, actor.WithGuardian(p.node.instanceStrategy), actor.WithDispatcher(p.node.dispatcher))
		pid := ctx.ActorSystem().Root.Spawn(props)
		c = &child{pid: pid}
		p.children[id] = c
		p.byPID[pid.Id] = id
		p.spawns++
		p.inMemory.Store(int64(len(p.children)))
		p.touch(c)
		p.evict(c)
	} else {
		p.touch(c)
	}
	if c.stopping {
		c.buffer = append(c.buffer, msg)
		return
	}
	if _, isWake := msg.(*wake); isWake && !ok {
		return // spawning activated it; the actor loads its own pending work
	}
	ctx.Send(c.pid, msg)
}

// scanTimers sends every due timer to its instance (activating it if need
// be) and arms the OS timer for the next one.
func (p *partitionActor) scanTimers(ctx actor.Context) {
	now := p.node.cfg.Now()
	due, err := p.store.DueTimers(now, timerScanBatch)
	if err != nil {
		p.node.log.Error("scan due timers", "partition", p.index, "err", err)
		p.arm(ctx, now.Add(time.Second))
		return
	}
	stillDue := make(map[timerRef]bool, len(due))
	for _, e := range due {
		ref := timerRef{id: e.ID, task: e.TaskID, due: e.Due.UnixNano()}
		stillDue[ref] = true
		if sent, ok := p.fired[ref]; ok && now.Sub(sent) < resendAfter {
			continue
		}
		p.fired[ref] = now
		p.route(ctx, &timerFired{id: e.ID, taskID: e.TaskID, due: e.Due})
	}
	if len(due) < timerScanBatch {
		// Every due entry was seen: a fired timer no longer in the index
		// was consumed (or dropped with its instance) without a notice.
		for ref := range p.fired {
			if !stillDue[ref] {
				delete(p.fired, ref)
			}
		}
	}
	if len(due) == timerScanBatch {
		p.arm(ctx, now) // more are due: go on at once
		return
	}
	var next time.Time
	for _, sent := range p.fired {
		if at := sent.Add(resendAfter); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	upcoming, err := p.store.DueTimers(time.Unix(0, 1<<62), len(p.fired)+1)
	if err != nil {
		p.node.log.Error("scan upcoming timers", "partition", p.index, "err", err)
	}
	for _, e := range upcoming {
		if _, sent := p.fired[timerRef{id: e.ID, task: e.TaskID, due: e.Due.UnixNano()}]; sent {
			continue
		}
		if next.IsZero() || e.Due.Before(next) {
			next = e.Due
		}
		break
	}
	if !next.IsZero() {
		p.arm(ctx, next)
	}
}

func (p *partitionActor) arm(ctx actor.Context, at time.Time) {
	if p.stopTimer != nil {
		p.stopTimer()
	}
	p.timerAt = at
	self, root := ctx.Self(), ctx.ActorSystem().Root
	p.stopTimer = p.node.afterFunc(at, func() { root.Send(self, &timerTick{}) })
}

// touch moves c to the most recent end of the recency list.
func (p *partitionActor) touch(c *child) {
	if p.maxChildren == 0 {
		return
	}
	c.unlink()
	c.prev, c.next = &p.lru, p.lru.next
	p.lru.next.prev = c
	p.lru.next = c
}

// unlink takes c out of the recency list (a no-op if it is not in it).
func (c *child) unlink() {
	if c.prev != nil {
		c.prev.next, c.next.prev = c.next, c.prev
		c.prev, c.next = nil, nil
	}
}

// evict asks the least recently routed children to passivate now, as many
// as the partition holds over maxChildren, skipping those already stopping
// and those that refused since the last spawn, and keep (the child a
// message is being routed to). A child passivates only if
// it is idle (nothing running, no commit in flight: see idleTracker.handle);
// a busy one answers stayActive, and evict asks the next. Its state is in
// the store: the next message for it activates it again.
func (p *partitionActor) evict(keep *child) {
	if p.maxChildren == 0 {
		return
	}
	over := len(p.children) - p.maxChildren
	for c := p.lru.prev; c != &p.lru && over > 0; c = c.prev {
		if c.stopping {
			over-- // on its way out
			continue
		}
		if c.refused == p.spawns || c == keep {
			continue
		}
		c.stopping = true
		p.node.system.Root.Send(c.pid, &passivateNow{})
		over--
	}
}

// serveDown is the Receive of a partition actor whose store is down:
// requests by message are answered with the hub's DownError; messages
// between instances are dropped (their senders keep them in their outboxes
// and send them again); stopping withdraws the down mark.
func (p *partitionActor) serveDown(ctx actor.Context) {
	err := p.node.cfg.Hub.DownError(p.index)
	if err == nil {
		err = fmt.Errorf("partition %d: %w", p.index, seam.ErrPartitionDown)
	}
	switch ctx.Message().(type) {
	case *seam.Request:
		if sender := ctx.Sender(); sender != nil {
			pidReply{root: ctx.ActorSystem().Root, pid: sender}.answer(seam.Failed(err))
		}
	case *actor.Stopping:
		if rerr := p.node.cfg.Hub.Release(p.index); rerr != nil {
			p.node.log.Warn("release partition", "partition", p.index, "err", rerr)
		}
	}
}
