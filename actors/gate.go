package actors

import "sync"

// activityGate bounds the activities running at once on a node. An instance
// that finds no free slot registers a wake-up and is called back, in FIFO
// order, when one frees: back-pressure without a blocked goroutine per
// waiting activity.
type activityGate struct {
	mu      sync.Mutex
	free    int
	waiters []func()
}

func newActivityGate(slots int) *activityGate { return &activityGate{free: slots} }

func (g *activityGate) tryAcquire() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.free == 0 {
		return false
	}
	g.free--
	return true
}

func (g *activityGate) release() {
	g.mu.Lock()
	g.free++
	g.mu.Unlock()
	g.passOn()
}

// wait registers wake to be called when a slot frees (at once if one is
// free now).
func (g *activityGate) wait(wake func()) {
	g.mu.Lock()
	if g.free > 0 {
		g.mu.Unlock()
		wake()
		return
	}
	g.waiters = append(g.waiters, wake)
	g.mu.Unlock()
}

// passOn wakes the next waiter if a slot is free: after a release, and from
// an instance that was woken but needed fewer slots than were free, so no
// waiter is stranded.
func (g *activityGate) passOn() {
	g.mu.Lock()
	var wake func()
	if g.free > 0 && len(g.waiters) > 0 { // wake outside the lock: it sends a message
		wake = g.waiters[0]
		g.waiters[0] = nil
		g.waiters = g.waiters[1:]
	}
	g.mu.Unlock()
	if wake != nil {
		wake()
	}
}
