package actors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// idleProbe is an actor that uses an idleTracker the way instance and
// entity actors do, with a test switch for whether it has work in hand.
// After each idle check it sends its partition a checkMarker saying when
// the check ran and when the probe last got a message: messages from one
// sender arrive in order, so a passivateRequest followed by its marker
// says what the probe knew when it asked.
type idleProbe struct {
	node      *Node
	partition *actor.PID
	stopped   chan struct{}
	idle      idleTracker
	busy      bool
	lastMsg   time.Time
}

type (
	probeWork struct{ done chan struct{} }
	probeBusy struct {
		busy bool
		done chan struct{}
	}
	checkMarker struct{ at, lastMsg time.Time }
)

const probeID = "probe"

func (a *idleProbe) Receive(ctx actor.Context) {
	if _, check := ctx.Message().(*idleCheck); !check {
		a.lastMsg = time.Now() // before observe: the tracker's own mark is no earlier
	}
	a.idle.observe(ctx, a.node.cfg.IdleTimeout)
	switch msg := ctx.Message().(type) {
	case *probeWork:
		close(msg.done)
	case *probeBusy:
		a.busy = msg.busy
		close(msg.done)
	case *idleCheck:
		a.idle.handle(ctx, a.node, a.partition, probeID, !a.busy)
		ctx.Send(a.partition, &checkMarker{at: time.Now(), lastMsg: a.lastMsg})
	case *passivateNow:
		a.idle.handle(ctx, a.node, a.partition, probeID, !a.busy)
	case *actor.Stopping:
		a.idle.stop()
	case *actor.Stopped:
		close(a.stopped)
	}
}

// passivationAsked is a passivateRequest the partition got, with the
// marker of the idle check that sent it.
type passivationAsked struct {
	req    *passivateRequest
	marker *checkMarker
}

// confirmPassivation tells the fake partition to answer the probe's last
// request with passivateNow.
type confirmPassivation struct{}

// fakePartition plays the partition's side of the passivation protocol
// for one probe, reporting what it hears.
type fakePartition struct {
	asked   chan passivationAsked
	checks  chan *checkMarker // of the checks that sent no request
	stays   chan *stayActive
	pending *passivateRequest
	last    *passivateRequest
}

func (p *fakePartition) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *passivateRequest:
		p.pending = msg
	case *checkMarker:
		if p.pending != nil {
			p.asked <- passivationAsked{req: p.pending, marker: msg}
			p.last, p.pending = p.pending, nil
			return
		}
		select {
		case p.checks <- msg:
		default: // nobody is counting
		}
	case *confirmPassivation:
		ctx.Send(p.last.pid, &passivateNow{})
	case *stayActive:
		p.stays <- msg
	}
}

type idleRig struct {
	system    *actor.ActorSystem
	partition *actor.PID
	probe     *actor.PID
	asked     chan passivationAsked
	checks    chan *checkMarker
	stays     chan *stayActive
	stopped   chan struct{}
	timeout   time.Duration
}

func startIdleRig(t *testing.T, timeout time.Duration) *idleRig {
	t.Helper()
	r := &idleRig{
		system:  actor.NewActorSystem(actor.WithLoggerFactory(testLoggerFactory(t))),
		asked:   make(chan passivationAsked, 1000),
		checks:  make(chan *checkMarker, 1000),
		stays:   make(chan *stayActive, 100),
		stopped: make(chan struct{}),
		timeout: timeout,
	}
	t.Cleanup(func() {
		// Stop the probe first, or its idle timer would go on waking it.
		_ = r.system.Root.StopFuture(r.probe).Wait()
		r.system.Shutdown()
	})
	r.partition = r.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &fakePartition{asked: r.asked, checks: r.checks, stays: r.stays}
	}))
	node := nodeWithIdleTimeout(timeout)
	r.probe = r.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &idleProbe{node: node, partition: r.partition, stopped: r.stopped}
	}))
	return r
}

// work sends the probe a message and waits until it has handled it.
func (r *idleRig) work(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	r.system.Root.Send(r.probe, &probeWork{done: done})
	receive(t, "the probe to take its work", done)
}

func (r *idleRig) setBusy(t *testing.T, busy bool) {
	t.Helper()
	done := make(chan struct{})
	r.system.Root.Send(r.probe, &probeBusy{busy: busy, done: done})
	receive(t, "the probe to take the switch", done)
}

// nextRequest waits for the probe's next passivateRequest and checks that
// it came from a probe quiet for the whole idle timeout.
func (r *idleRig) nextRequest(t *testing.T) passivationAsked {
	t.Helper()
	p := receive(t, "a passivation request", r.asked)
	if p.req.id != probeID || !p.req.pid.Equal(r.probe) {
		t.Fatalf("passivation request for %s %v, want %s %v", p.req.id, p.req.pid, probeID, r.probe)
	}
	if quiet := p.marker.at.Sub(p.marker.lastMsg); quiet < r.timeout {
		t.Fatalf("asked to passivate after %v without a message, want at least the idle timeout %v", quiet, r.timeout)
	}
	return p
}

func (r *idleRig) isStopped() bool {
	select {
	case <-r.stopped:
		return true
	default:
		return false
	}
}

func TestIdleActorAsksToPassivateAfterIdleTimeout(t *testing.T) {
	checkNoGoroutineLeft(t)
	r := startIdleRig(t, 20*time.Millisecond)
	r.nextRequest(t)
	if r.isStopped() {
		t.Fatal("the actor stopped before its partition told it to")
	}
}

// Messages arriving more often than the idle timeout keep the actor in
// memory: it asks to passivate only once it has had none for the whole
// timeout (nextRequest checks every request), and does so once they stop.
func TestWorkWithinIdleTimeoutKeepsActorActive(t *testing.T) {
	checkNoGoroutineLeft(t)
	const timeout = 40 * time.Millisecond
	r := startIdleRig(t, timeout)
	for i := 0; i < 20; i++ {
		r.work(t)
		time.Sleep(timeout / 5)
	}
	lastWork := time.Now()
	r.work(t)
	for {
		p := r.nextRequest(t)
		if !p.marker.lastMsg.Before(lastWork) {
			return // asked once the work stopped
		}
		// The test was descheduled for longer than the timeout: a fair
		// request. The next one must still come.
	}
}

func TestIdleActorStopsWhenItsPartitionConfirms(t *testing.T) {
	checkNoGoroutineLeft(t)
	r := startIdleRig(t, 20*time.Millisecond)
	r.nextRequest(t)
	r.system.Root.Send(r.partition, &confirmPassivation{})
	receive(t, "the actor to stop", r.stopped)
}

// An actor that got work between asking to passivate and its partition's
// answer says it stays, keeps running, and asks again once it is idle.
func TestActorThatGotWorkAfterAskingToPassivateStaysActive(t *testing.T) {
	checkNoGoroutineLeft(t)
	r := startIdleRig(t, 20*time.Millisecond)
	r.nextRequest(t)
	r.setBusy(t, true)
	r.system.Root.Send(r.partition, &confirmPassivation{})
	if stay := receive(t, "the actor to say it stays", r.stays); stay.id != probeID {
		t.Fatalf("stayActive for %q, want %q", stay.id, probeID)
	}
	r.work(t) // still running
	if r.isStopped() {
		t.Fatal("a busy actor stopped")
	}
	r.setBusy(t, false)
	r.nextRequest(t)
	r.system.Root.Send(r.partition, &confirmPassivation{})
	receive(t, "the actor to stop once idle", r.stopped)
}

// A busy actor is not asked about: its idle checks send nothing, however
// many of them run while it is busy.
func TestBusyActorDoesNotAskToPassivate(t *testing.T) {
	checkNoGoroutineLeft(t)
	const timeout = 10 * time.Millisecond
	r := startIdleRig(t, timeout)
	r.setBusy(t, true)
	busySince := time.Now()
	for checks := 0; checks < 5; {
		select {
		case m := <-r.checks:
			if m.at.After(busySince) {
				checks++
			}
		case p := <-r.asked:
			if p.marker.at.After(busySince) {
				t.Fatalf("a busy actor asked to passivate (check at %v, busy since %v)", p.marker.at, busySince)
			}
		case <-time.After(waitDeadline):
			t.Fatal("timed out waiting for idle checks")
		}
	}
	r.setBusy(t, false)
	for {
		if p := r.nextRequest(t); p.marker.at.After(busySince) {
			return
		}
	}
}
