package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// idleCheck is the message an idle timer sends to its actor.
type idleCheck struct{}

// idleTracker passivates an actor after IdleTimeout without messages. It
// replaces protoactor's receive timeout, whose timer callback writes the
// actor's context from the timer's goroutine (a data race upstream) and
// disarms itself on delivery. Here the timer only sends a message; all
// state is touched on the actor's own goroutine.
type idleTracker struct {
	timer      *time.Timer
	lastActive time.Time
}

// touch records activity; call it for every message but idleCheck.
func (t *idleTracker) touch() { t.lastActive = time.Now() }

// observe is called first for every message an actor receives: any message
// but the tracker's own counts as activity, and Started arms the timer.
func (t *idleTracker) observe(ctx actor.Context, timeout time.Duration) {
	switch ctx.Message().(type) {
	case *idleCheck:
	case *actor.Started:
		t.touch()
		t.arm(ctx, timeout)
	default:
		t.touch()
	}
}

func (t *idleTracker) arm(ctx actor.Context, after time.Duration) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	if t.timer == nil {
		t.timer = time.AfterFunc(after, func() { root.Send(self, &idleCheck{}) })
		return
	}
	t.timer.Reset(after)
}

func (t *idleTracker) stop() {
	if t.timer != nil {
		t.timer.Stop()
	}
}

// handle serves idleCheck and passivateNow, the protocol shared by instance
// and entity actors with their partition.
func (t *idleTracker) handle(ctx actor.Context, n *Node, partition *actor.PID, id string, idle bool) {
	switch ctx.Message().(type) {
	case *idleCheck:
		timeout := n.cfg.IdleTimeout
		if quiet := time.Since(t.lastActive); quiet < timeout {
			t.arm(ctx, timeout-quiet)
			return
		}
		t.arm(ctx, timeout)
		if idle {
			ctx.Send(partition, &passivateRequest{id: id, pid: ctx.Self()})
		}
	case *passivateNow:
		if idle {
			ctx.Stop(ctx.Self())
		} else {
			ctx.Send(partition, &stayActive{id: id})
		}
	}
}
