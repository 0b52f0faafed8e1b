package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/persistence"
)

// routed is a message the partition forwards to the actor of one instance.
type routed interface{ instanceID() string }

// wake activates an instance that has pending work.
type wake struct{ id string }

func (m *wake) instanceID() string { return m.id }

// startInstance asks an instance actor to create a new execution.
type startInstance struct {
	req   StartRequest
	reply chan error
}

func (m *startInstance) instanceID() string { return m.req.InstanceID }

// passivateRequest: an idle instance actor asks its partition to stop it.
type passivateRequest struct{ id string }

// passivateNow: the partition tells the instance actor to stop if it is
// still idle; it answers stayActive otherwise.
type passivateNow struct{}

// stayActive: the instance got work after asking to passivate.
type stayActive struct{ id string }

// child is the partition's view of one instance actor. While the actor is
// stopping, messages for its instance wait in buffer and go to a fresh
// actor once the old one has terminated: an instance never has two actors
// (two writers) at once.
type child struct {
	pid      *actor.PID
	stopping bool
	buffer   []routed
}

// partitionActor owns the instance actors of one store partition.
type partitionActor struct {
	node     *Node
	index    int
	store    *persistence.Partition
	children map[string]*child
	byPID    map[string]string // pid id -> instance id
}

func newPartitionActor(n *Node, index int, store *persistence.Partition) *partitionActor {
	return &partitionActor{node: n, index: index, store: store, children: map[string]*child{}, byPID: map[string]string{}}
}

func (p *partitionActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case routed:
		p.route(ctx, msg)
	case *passivateRequest:
		c, ok := p.children[msg.id]
		if ok && !c.stopping && ctx.Sender() != nil && c.pid.Equal(ctx.Sender()) {
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
	}
}

func (p *partitionActor) route(ctx actor.Context, msg routed) {
	id := msg.instanceID()
	c, ok := p.children[id]
	if !ok {
		props := actor.PropsFromProducer(func() actor.Actor { return newInstanceActor(p.node, p.store, id) },
			actor.WithSupervisor(instanceSupervisor()))
		pid := ctx.Spawn(props)
		c = &child{pid: pid}
		p.children[id] = c
		p.byPID[pid.Id] = id
	}
	if c.stopping {
		c.buffer = append(c.buffer, msg)
		return
	}
	if _, isWake := msg.(*wake); isWake {
		// Spawning activated it; the actor loads its own pending work.
		if ok {
			ctx.Send(c.pid, msg)
		}
		return
	}
	ctx.Send(c.pid, msg)
}
