package orchestration

import (
	"math"
	"time"
)

// RetryPolicy says how a failed activity or sub-orchestration is retried.
// The waits between attempts are durable timers, so a retry pending across
// a restart still happens.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, the first included
	// (values below 1 mean 1: no retry).
	MaxAttempts int
	// FirstRetryInterval is the wait before the second attempt.
	FirstRetryInterval time.Duration
	// BackoffCoefficient multiplies the wait after each attempt (values
	// below 1 mean 1: constant waits).
	BackoffCoefficient float64
	// MaxRetryInterval caps each wait (0: no cap).
	MaxRetryInterval time.Duration
	// RetryTimeout gives up once the next attempt would start later than
	// this after the first one (0: no limit).
	RetryTimeout time.Duration
	// Handle decides whether a failure is worth another attempt (nil: every
	// failure is). It receives the attempt's *TaskFailedError. It runs
	// during replay too, so it must be deterministic.
	Handle func(err error) bool
}

// delay is the wait after the given (1-based) failed attempt.
func (p *RetryPolicy) delay(attempt int32) time.Duration {
	coef := p.BackoffCoefficient
	if coef < 1 {
		coef = 1
	}
	d := float64(p.FirstRetryInterval) * math.Pow(coef, float64(attempt-1))
	if p.MaxRetryInterval > 0 && d > float64(p.MaxRetryInterval) {
		return p.MaxRetryInterval
	}
	if d > float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

func (p *RetryPolicy) shouldRetry(err error) (retry bool) {
	if p.Handle == nil {
		return true
	}
	defer func() {
		if recover() != nil {
			retry = false // a panicking predicate must not take the engine down
		}
	}()
	return p.Handle(err)
}

// withRetry runs call (attempt 1, 2, ...) until an attempt succeeds or the
// policy gives up, with a durable timer before each retry. It is driven by
// completion listeners on the engine's side, so it replays exactly.
func (e *Execution) withRetry(p *RetryPolicy, kind, name string, call func(attempt int32) *taskState) Task {
	r := &taskState{e: e, kind: kind, name: name, id: -1}
	first := e.now
	attempt := int32(1)
	var run func()
	run = func() {
		t := call(attempt)
		t.onDone(func() {
			if t.err == nil {
				r.complete(t.result, nil)
				return
			}
			if int(attempt) >= p.MaxAttempts || !p.shouldRetry(t.err) {
				r.complete(nil, t.err)
				return
			}
			wait := p.delay(attempt)
			if p.RetryTimeout > 0 && e.now.Add(wait).Sub(first) > p.RetryTimeout {
				r.complete(nil, t.err)
				return
			}
			e.scheduleTimer(e.now.Add(wait)).onDone(func() {
				attempt++
				run()
			})
		})
	}
	run()
	return r
}
