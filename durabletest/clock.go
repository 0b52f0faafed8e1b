package durabletest

import (
	"sort"
	"sync"
	"time"
)

// Clock is a clock that moves only when told: the runtime of an Env runs
// by it (durable.Options.Clock), so its durable timers fire when the test
// advances it. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	wakeups map[*wakeup]struct{}
}

type wakeup struct {
	at time.Time
	f  func()
}

// NewClock returns a clock that reads start until it is moved.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, wakeups: map[*wakeup]struct{}{}}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f once the clock has moved d past now: at once, on the
// caller's goroutine, when d <= 0. The returned stop cancels the call and
// reports whether it did.
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	if d <= 0 {
		f()
		return func() bool { return false }
	}
	c.mu.Lock()
	w := &wakeup{at: c.now.Add(d), f: f}
	c.wakeups[w] = struct{}{}
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, armed := c.wakeups[w]
		delete(c.wakeups, w)
		return armed
	}
}

// Set moves the clock to t (never back) and makes the calls that are due,
// earliest first, outside the clock's lock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	var due []*wakeup
	for w := range c.wakeups {
		if !w.at.After(c.now) {
			due = append(due, w)
			delete(c.wakeups, w)
		}
	}
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, w := range due {
		w.f()
	}
}

// Advance moves the clock d forward (see Set).
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }
