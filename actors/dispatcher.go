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
	mu        sync.Mutex // guards extras and stopped, and wg.Add after start
	extras    int
	stopped   bool
}

// defaultExtraIdle is how long an extra worker stays without work.
const defaultExtraIdle = time.Second

func newPoolDispatcher(workers, throughput int) *poolDispatcher {
	d := &poolDispatcher{work: make(chan func()), throughput: throughput, stop: make(chan struct{}),
		maxExtras: 4 * workers, extraIdle: defaultExtraIdle}
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
// pool has its extras already or is closed.
func (d *poolDispatcher) extra(fn func()) {
	fn()
	if !d.join() {
		return
	}
	defer d.leave()
	idle := time.NewTimer(d.extraIdle)
	defer idle.Stop()
	worked := false // since the timer was last set
	for {
		select {
		case fn := <-d.work:
			fn()
			worked = true
		case <-idle.C:
			if !worked {
				return
			}
			worked = false
			idle.Reset(d.extraIdle)
		case <-d.stop:
			return
		}
	}
}

// join counts a goroutine in as an extra worker; false if there are enough
// or the pool is closed.
func (d *poolDispatcher) join() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.extras >= d.maxExtras {
		return false
	}
	d.extras++
	d.wg.Add(1)
	return true
}

func (d *poolDispatcher) leave() {
	d.mu.Lock()
	d.extras--
	d.mu.Unlock()
	d.wg.Done()
}

// Throughput implements actor.Dispatcher: messages a mailbox processes
// before it yields its worker.
func (d *poolDispatcher) Throughput() int { return d.throughput }

// close stops the workers, extras included, once the actors are stopped.
func (d *poolDispatcher) close() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	close(d.stop)
	d.wg.Wait()
}
