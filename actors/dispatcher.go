package actors

import (
	"sync"
	"time"
)

// poolDispatcher runs actor mailboxes on long-lived worker goroutines.
// protoactor's default dispatcher starts a new goroutine each time a
// mailbox gets work, and that goroutine's small stack then grows through
// our handlers (commits, replay, JSON) every time: measured at ~13% of CPU
// under load. A worker keeps its grown stack.
//
// Schedule hands the mailbox to an idle worker, or starts a goroutine when
// none is idle, so it never queues and a busy pool can never starve or
// deadlock a mailbox. Under load (more runnable goroutines than cores, so
// workers are often preempted mid-mailbox) that second path is common, and
// its fresh stacks grew again through the partition actor's routing: about
// 7% of W6's CPU. So a goroutine started for a mailbox stays on as an extra
// worker once it is done, while it finds work, up to maxExtras of them; an
// extra that sat idle for a whole extraIdle period leaves.
type poolDispatcher struct {
	work       chan func()
	throughput int
	stop       chan struct{}
	wg         sync.WaitGroup

	maxExtras int
	extraIdle time.Duration
	mu        sync.Mutex                 // guards extras and stopped, and wg.Add after start
	extras    map[chan struct{}]struct{} // each extra's quit channel
	stopped   bool
}

// defaultExtraIdle is how long an extra worker stays without work.
const defaultExtraIdle = time.Second

func newPoolDispatcher(workers, throughput int) *poolDispatcher {
	d := &poolDispatcher{work: make(chan func()), throughput: throughput, stop: make(chan struct{}),
		maxExtras: 4 * workers, extraIdle: defaultExtraIdle, extras: map[chan struct{}]struct{}{}}
	d.wg.Add(workers)
	for i := 0; i < workers; i++ {
		go d.worker()
	}
	return d
}

func (d *poolDispatcher) worker() {
	defer d.wg.Done()
	for {
		select {
		case fn := <-d.work:
			fn()
		case <-d.stop:
			return
		}
	}
}

// Schedule implements actor.Dispatcher.
func (d *poolDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go d.extra(fn)
	}
}

// extra runs fn, then serves as a worker while it finds work, unless the
// pool has its extras already or is closed. Its select has two cases, as a
// worker's: a third (the idle timer beside stop) cost ~5% of W6's CPU, so
// the idle timer and close both knock on one quit channel.
func (d *poolDispatcher) extra(fn func()) {
	fn()
	quit, ok := d.join()
	if !ok {
		return
	}
	defer d.leave(quit)
	knock := func() {
		select {
		case quit <- struct{}{}:
		default:
		}
	}
	idle := time.AfterFunc(d.extraIdle, knock)
	defer idle.Stop()
	worked := false // since the timer was last set
	for {
		select {
		case fn := <-d.work:
			fn()
			worked = true
		case <-quit:
			if !worked || d.isStopped() {
				return
			}
			worked = false
			idle.Reset(d.extraIdle)
		}
	}
}

// join counts a goroutine in as an extra worker and returns the channel
// that tells it to check whether to leave; false if there are enough extras
// or the pool is closed.
func (d *poolDispatcher) join() (chan struct{}, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || len(d.extras) >= d.maxExtras {
		return nil, false
	}
	quit := make(chan struct{}, 1)
	d.extras[quit] = struct{}{}
	d.wg.Add(1)
	return quit, true
}

func (d *poolDispatcher) leave(quit chan struct{}) {
	d.mu.Lock()
	delete(d.extras, quit)
	d.mu.Unlock()
	d.wg.Done()
}

func (d *poolDispatcher) isStopped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped
}

// Throughput implements actor.Dispatcher: messages a mailbox processes
// before it yields its worker.
func (d *poolDispatcher) Throughput() int { return d.throughput }

// close stops the workers, extras included, once the actors are stopped.
func (d *poolDispatcher) close() {
	d.mu.Lock()
	d.stopped = true
	for quit := range d.extras {
		select {
		case quit <- struct{}{}:
		default: // knocked already: it checks stopped
		}
	}
	d.mu.Unlock()
	close(d.stop)
	d.wg.Wait()
}
