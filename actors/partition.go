package actors

import (
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
}

// partitionActor owns the instance actors of one store partition and its
// durable timers.
type partitionActor struct {
	node     *Node
	index    int
	store    *persistence.Partition
	children map[string]*child
	byPID    map[string]string // pid id -> instance id

	// The timer scheduler: one OS timer armed for the earliest due entry
	// of the due-timer index. Fired entries stay in the index until their
	// instance commits the TimerFired event; until then they are not sent
	// again (unless resendAfter passes, in case the message was lost).
	timer   *time.Timer
	timerAt time.Time
	fired   map[timerRef]time.Time
}

const (
	timerScanBatch = 1000
	resendAfter    = 30 * time.Second
)

func newPartitionActor(n *Node, index int, store *persistence.Partition) *partitionActor {
	return &partitionActor{
		node: n, index: index, store: store,
		children: map[string]*child{}, byPID: map[string]string{},
		fired: map[timerRef]time.Time{},
	}
}

func (p *partitionActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		p.scanTimers(ctx)
	case routed:
		p.route(ctx, msg)
	case *seam.Request:
		p.serveRemote(ctx, msg)
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
			for _, m := range c.buffer {
				ctx.Send(c.pid, m)
			}
			c.buffer = nil
		}
	case *actor.Terminated:
		id, ok := p.byPID[msg.Who.Id]
		if !ok {
			return
		}
		delete(p.byPID, msg.Who.Id)
		c := p.children[id]
		delete(p.children, id)
		if c != nil && len(c.buffer) > 0 {
			for _, m := range c.buffer {
				p.route(ctx, m)
			}
		}
	case *actor.Stopping:
		if p.timer != nil {
			p.timer.Stop()
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
	}
}

func (p *partitionActor) route(ctx actor.Context, msg routed) {
	id := msg.instanceID()
	c, ok := p.children[id]
	if !ok {
		self := ctx.Self()
		producer := func() actor.Actor { return newInstanceActor(p.node, self, p.store, id) }
		if isEntityID(id) {
			producer = func() actor.Actor { return newEntityActor(p.node, self, p.store, id) }
		}
		// Spawned from the root and watched rather than spawned as
		// children: protoactor's child set keeps a stopped child's PID (and
		// so the whole dead actor) reachable in its backing array, which
		// would hold on to every passivated instance.
		props := actor.PropsFromProducer(producer, actor.WithGuardian(p.node.instanceStrategy), actor.WithDispatcher(p.node.dispatcher))
		pid := ctx.ActorSystem().Root.Spawn(props)
		ctx.Watch(pid)
		c = &child{pid: pid}
		p.children[id] = c
		p.byPID[pid.Id] = id
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
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timerAt = at
	self, root := ctx.Self(), ctx.ActorSystem().Root
	p.timer = time.AfterFunc(time.Until(at), func() { root.Send(self, &timerTick{}) })
}
