package actors

import "time"

func unixTime(nanos int64) time.Time { return time.Unix(0, nanos).UTC() }

// Clock is the time a node runs by: Now stamps new events (and so is what
// orchestrator code sees as Context.Now) and decides which durable timers
// are due; AfterFunc wakes a partition's timer scan after d (at once when
// d <= 0) and returns a function that cancels that wake-up. A test clock
// (durabletest.Env) moves only when the test says, so timers fire when it
// advances time. Config.Clock nil is the system clock, with no indirection
// on any path.
//
// Idle passivation and the resending of unacknowledged messages keep the
// system clock: they are about the process, not about workflow time.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// afterFunc arms f after the time until at on the node's clock.
func (n *Node) afterFunc(at time.Time, f func()) (stop func() bool) {
	if c := n.cfg.Clock; c != nil {
		return c.AfterFunc(at.Sub(c.Now()), f)
	}
	return time.AfterFunc(time.Until(at), f).Stop
}
