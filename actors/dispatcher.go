package actors

import "sync"

// poolDispatcher runs actor mailboxes on long-lived worker goroutines.
// protoactor's default dispatcher starts a new goroutine each time a
// mailbox gets work, and that goroutine's small stack then grows through
// our handlers (commits, replay, JSON) every time: measured at ~13% of CPU
// under load. A worker keeps its grown stack. Schedule hands the mailbox to
// an idle worker, or starts a goroutine when none is idle, so it never
// queues and a busy pool can never starve or deadlock a mailbox.
type poolDispatcher struct {
	work       chan func()
	throughput int
	workers    int
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

func newPoolDispatcher(workers, throughput int) *poolDispatcher {
	d := &poolDispatcher{work: make(chan func()), throughput: throughput, workers: workers}
	d.wg.Add(workers)
	for i := 0; i < workers; i++ {
		go d.worker()
	}
	return d
}

// worker runs mailboxes until close hands it nil. A plain receive, not a
// select with a stop channel: every idle worker would otherwise queue on,
// and lock, that one shared channel each time it waits.
func (d *poolDispatcher) worker() {
	defer d.wg.Done()
	for fn := range d.work {
		if fn == nil {
			return
		}
		fn()
	}
}

// Schedule implements actor.Dispatcher.
func (d *poolDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go func() {
			growStackForHandlers()
			fn()
		}()
	}
}

// Throughput implements actor.Dispatcher: messages a mailbox processes
// before it yields its worker.
func (d *poolDispatcher) Throughput() int { return d.throughput }

// close stops the workers once the actors are stopped: each takes a nil
// and returns. A mailbox scheduled after that finds no worker and runs on
// a goroutine of its own.
func (d *poolDispatcher) close() {
	d.closeOnce.Do(func() {
		for i := 0; i < d.workers; i++ {
			d.work <- nil
		}
	})
	d.wg.Wait()
}

// activityDispatcher runs each activity actor's mailbox on a goroutine of
// its own, as protoactor's default dispatcher does (an activity may block
// for as long as it likes without holding a pool worker), but grows that
// goroutine's stack once, at its start, to what an activity typically
// needs. Otherwise the small starting stack grows while the activity runs
// (JSON, reflection, the user's code), and each growth copies and adjusts
// every frame on the stack then: about 5% of W1's CPU in a profile.
type activityDispatcher struct{}

// Throughput implements actor.Dispatcher: an activity actor handles one
// message and stops.
func (activityDispatcher) Throughput() int { return 300 }

// Schedule implements actor.Dispatcher.
func (activityDispatcher) Schedule(fn func()) {
	go func() {
		growStackForActivity()
		fn()
	}()
}

// activityStackFrame is the frame growStackForActivity takes: the
// goroutine's stack grows from its starting size to the next size that
// holds it (16 KiB), while only two frames are on it to copy.
const activityStackFrame = 14 << 10

// growStackForActivity takes a large frame, so the goroutine's stack is
// grown to hold it at once.
//
//go:noinline
func growStackForActivity() byte {
	var frame [activityStackFrame]byte
	return lastByte(frame[:])
}

// growStackForHandlers grows a goroutine's stack to 8 KiB, enough for our
// handlers (a commit, an activation's reads, a replay): a mailbox run the
// worker pool cannot take.
//
//go:noinline
func growStackForHandlers() byte {
	var frame [6 << 10]byte
	return lastByte(frame[:])
}

// lastByte keeps the growStack functions' frames from being optimized away.
//
//go:noinline
func lastByte(b []byte) byte { return b[len(b)-1] }
