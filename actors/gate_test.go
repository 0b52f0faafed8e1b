package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// wakeLog records, in order, which waiters of a gate were woken.
type wakeLog struct {
	mu    sync.Mutex
	woken []string
}

func (l *wakeLog) waker(name string) func() {
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.woken = append(l.woken, name)
	}
}

func (l *wakeLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.woken...)
}

func TestGateGrantsNoMoreSlotsThanItHas(t *testing.T) {
	for _, slots := range []int{1, 3, 64} {
		t.Run(fmt.Sprint(slots), func(t *testing.T) {
			g := newActivityGate(slots)
			for i := 0; i < slots; i++ {
				if !g.tryAcquire() {
					t.Fatalf("slot %d of %d refused", i+1, slots)
				}
			}
			if g.tryAcquire() {
				t.Fatalf("slot %d of %d granted", slots+1, slots)
			}
			g.release()
			if !g.tryAcquire() {
				t.Fatal("a released slot was not granted again")
			}
			if g.tryAcquire() {
				t.Fatal("one release granted two slots")
			}
		})
	}
}

func TestGateWakesWaiterAtOnceWhenASlotIsFree(t *testing.T) {
	g := newActivityGate(1)
	var log wakeLog
	g.wait(log.waker("a"))
	if got := log.get(); len(got) != 1 {
		t.Fatalf("woken %v, want [a] at once", got)
	}
	if !g.tryAcquire() {
		t.Fatal("waking a waiter took the free slot; the waiter must take it itself")
	}
}

func TestGateWakesWaiterWhenSlotFrees(t *testing.T) {
	g := newActivityGate(1)
	g.tryAcquire()
	var log wakeLog
	g.wait(log.waker("a"))
	if got := log.get(); len(got) != 0 {
		t.Fatalf("woken %v while no slot was free", got)
	}
	g.release()
	if got := log.get(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("after a release woken %v, want [a]", got)
	}
}

func TestGateWakesWaitersInArrivalOrderOnePerFreedSlot(t *testing.T) {
	g := newActivityGate(2)
	g.tryAcquire()
	g.tryAcquire()
	var log wakeLog
	for _, name := range []string{"a", "b", "c"} {
		g.wait(log.waker(name))
	}
	g.release()
	if got := log.get(); fmt.Sprint(got) != "[a]" {
		t.Fatalf("after one release woken %v, want [a]", got)
	}
	g.release()
	if got := log.get(); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("after two releases woken %v, want [a b]", got)
	}
}

// An instance woken for a slot that then takes none (it needs fewer than
// are free, or none any more) passes the wake-up on, so that no waiter is
// left behind while a slot is free.
func TestGateWokenWaiterThatTakesNoSlotPassesItOn(t *testing.T) {
	g := newActivityGate(1)
	g.tryAcquire()
	var log wakeLog
	g.wait(log.waker("a"))
	g.wait(log.waker("b"))
	g.release()
	if got := log.get(); fmt.Sprint(got) != "[a]" {
		t.Fatalf("after the release woken %v, want [a]", got)
	}
	g.passOn() // a took nothing
	if got := log.get(); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("after a passed on woken %v, want [a b]", got)
	}
}

func TestGatePassOnWakesNobodyWhileNoSlotIsFree(t *testing.T) {
	g := newActivityGate(1)
	g.tryAcquire()
	var log wakeLog
	g.wait(log.waker("a"))
	g.passOn()
	if got := log.get(); len(got) != 0 {
		t.Fatalf("passOn woke %v with no free slot", got)
	}
	g.passOn()
	g.release()
	if got := log.get(); fmt.Sprint(got) != "[a]" {
		t.Fatalf("after the release woken %v, want [a] once", got)
	}
}

// A wake-up runs outside the gate's lock: the instance it wakes may ask
// the gate for a slot from it.
func TestGateWakeMayTakeTheSlotItWasWokenFor(t *testing.T) {
	g := newActivityGate(1)
	g.tryAcquire()
	took := make(chan bool, 1)
	g.wait(func() { took <- g.tryAcquire() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.release()
	}()
	receive(t, "release to return", done)
	if !receive(t, "the waiter to be woken", took) {
		t.Fatal("the woken waiter found no free slot")
	}
}

// Many instances dispatching activities at once, each the way an instance
// actor does (take slots while there are, else wait to be woken, and pass
// the wake-up on when done), never run more activities than there are
// slots, and all of their activities run.
func TestGateBoundsConcurrentActivitiesAndRunsThemAll(t *testing.T) {
	checkNoGoroutineLeft(t)
	const (
		slots     = 4
		instances = 16
		each      = 50
	)
	g := newActivityGate(slots)
	var running, maxRunning, ran atomic.Int64
	var activities sync.WaitGroup
	activity := func() {
		defer activities.Done()
		now := running.Add(1)
		for {
			max := maxRunning.Load()
			if now <= max || maxRunning.CompareAndSwap(max, now) {
				break
			}
		}
		ran.Add(1)
		running.Add(-1)
		g.release()
	}
	var dispatchers sync.WaitGroup
	for i := 0; i < instances; i++ {
		dispatchers.Add(1)
		go func() {
			defer dispatchers.Done()
			woken := make(chan struct{}, 1)
			for left := each; left > 0; {
				if !g.tryAcquire() {
					g.wait(func() { woken <- struct{}{} })
					<-woken
					continue
				}
				left--
				activities.Add(1)
				go activity()
			}
			g.passOn()
		}()
	}
	done := make(chan struct{})
	go func() {
		dispatchers.Wait()
		activities.Wait()
		close(done)
	}()
	receive(t, "every activity to run", done)
	if got := ran.Load(); got != instances*each {
		t.Errorf("%d activities ran, want %d", got, instances*each)
	}
	if got := maxRunning.Load(); got > slots {
		t.Errorf("%d activities ran at once, want at most %d", got, slots)
	}
	for i := 0; i < slots; i++ {
		if !g.tryAcquire() {
			t.Fatalf("after every activity released its slot, slot %d of %d is taken", i+1, slots)
		}
	}
}

// waiting counts the gate's registered waiters.
func (g *activityGate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiters)
}

// A wake-up sent to an instance that ended while it waited for a slot
// (and whose actor has since stopped) must still reach the next waiter.
// Here the slot frees when a terminated instance's activity returns: that
// instance takes no turn on the result, so nothing else passes the slot on.
func TestGateWakeUpOfInstanceThatEndedWhileWaitingReachesTheNextWaiter(t *testing.T) {
	checkNoGoroutineLeft(t)
	hub := openTestHub(t, 1)
	running := make(chan string, 10)
	reg := newTestRegistry().
		addOrchestrator("Work", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.CallActivity("Hold", ctx.InstanceID()).Await(nil)
		}).
		addActivity("Hold", func(ctx context.Context, input []byte) ([]byte, error) {
			var id string
			if err := json.Unmarshal(input, &id); err != nil {
				return nil, err
			}
			running <- id
			if id == "holder" {
				<-ctx.Done() // until its instance is terminated
			}
			return nil, nil
		})
	n := startTestNode(t, hub, reg, nodeOptions{maxActivities: 1})
	gate := gateOf(n)
	startTestInstance(t, n, "holder", "Work", nil)
	if id := receive(t, "the first activity to run", running); id != "holder" {
		t.Fatalf("%s's activity ran first, want holder's", id)
	}
	startTestInstance(t, n, "quitter", "Work", nil)
	waitFor(t, "quitter to wait for a slot", func() bool { return gate.waiting() == 1 })
	startTestInstance(t, n, "next", "Work", nil)
	waitFor(t, "next to wait for a slot", func() bool { return gate.waiting() == 2 })

	before := actorsInMemory(n)
	terminateTestInstance(t, n, "quitter")
	waitFor(t, "quitter's actor to passivate", func() bool { return actorsInMemory(n) < before })
	terminateTestInstance(t, n, "holder")

	select {
	case id := <-running:
		if id != "next" {
			t.Fatalf("%s's activity ran, want next's", id)
		}
	case <-time.After(waitDeadline):
		gate.mu.Lock()
		defer gate.mu.Unlock()
		t.Fatalf("next's activity did not run: %d slot(s) free, %d waiter(s)", gate.free, len(gate.waiters))
	}
	waitForStatus(t, hub, "next", persistence.StatusCompleted)
}
