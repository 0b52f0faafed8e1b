package actors

import "sync"

// activityGate bounds the activities running at once on a node. An instance
// that finds no free slot registers a wake-up and is called back, in FIFO
// order, when one frees: back-pressure without a blocked goroutine per
// waiting activity.
type activityGate struct {
	mu      sync.Mutex
	free    int
	waiters []*gateWaiter
}

// gateWaiter is one registered wake-up; a canceled one (its actor stopped)
// is skipped, so it does not take the turn of a waiter that is still there.
type gateWaiter struct {
	wake     func()
	canceled bool
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
// free now). The waiter it returns is canceled when its actor stops
// waiting without having been woken.
func (g *activityGate) wait(wake func()) *gateWaiter {
	w := &gateWaiter{wake: wake}
	g.mu.Lock()
	if g.free > 0 {
		g.mu.Unlock()
		wake()
		return w
	}
	g.waiters = append(g.waiters, w)
	g.mu.Unlock()
	return w
}

// cancel withdraws w (if it still waits) and hands its turn on: the wake-up
// of an actor that has stopped would be lost, stranding the waiters behind
// it.
func (g *activityGate) cancel(w *gateWaiter) {
	if w == nil {
		return
	}
	g.mu.Lock()
	w.canceled = true
	g.mu.Unlock()
	g.passOn()
}

// passOn wakes the next waiter if a slot is free: after a release, and from
// an instance that was woken but needed fewer slots than were free, so no
// waiter is stranded.
func (g *activityGate) passOn() {
	g.mu.Lock()
	var wake func()
	for g.free > 0 && len(g.waiters) > 0 && wake == nil { // wake outside the lock: it sends a message
		w := g.waiters[0]
		g.waiters[0] = nil
		g.waiters = g.waiters[1:]
		if !w.canceled {
			w.wake, wake = nil, w.wake
		}
	}
	g.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// load reports the slots in use and the instances waiting for one.
func (g *activityGate) load(slots int) (running, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range g.waiters {
		if !w.canceled {
			waiting++
		}
	}
	return slots - g.free, waiting
}
