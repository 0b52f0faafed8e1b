package actors

import (
	"fmt"
	"testing"
	"time"

	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// The partition actor's durable timer scheduler: every timer of the
// due-timer index reaches its instance once due, also after a restart,
// and an entry nobody waits for any more leaves the index.

// timerRegistry holds the orchestrators of these tests:
//   - Sleep waits for a timer of the duration in its input;
//   - SleepUntil waits for a timer due at the time in its input;
//   - SleepThrice waits for three timers of the duration in its input, one
//     after another;
//   - WaitForGo waits for the external event Go;
//   - SleepOrGo waits for an hour-long timer or the event Go, whichever
//     comes first;
//   - Done completes at once.
func timerRegistry() *testRegistry {
	return newTestRegistry().
		addOrchestrator("Sleep", func(ctx *orchestration.Context) (any, error) {
			var d time.Duration
			if err := ctx.Input(&d); err != nil {
				return nil, err
			}
			return "woke", ctx.CreateTimer(d).Await(nil)
		}).
		addOrchestrator("SleepUntil", func(ctx *orchestration.Context) (any, error) {
			var at time.Time
			if err := ctx.Input(&at); err != nil {
				return nil, err
			}
			return "woke", ctx.CreateTimerAt(at).Await(nil)
		}).
		addOrchestrator("SleepThrice", func(ctx *orchestration.Context) (any, error) {
			var d time.Duration
			if err := ctx.Input(&d); err != nil {
				return nil, err
			}
			for i := 0; i < 3; i++ {
				if err := ctx.CreateTimer(d).Await(nil); err != nil {
					return nil, err
				}
			}
			return "woke", nil
		}).
		addOrchestrator("WaitForGo", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.WaitForExternalEvent("Go").Await(nil)
		}).
		addOrchestrator("SleepOrGo", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.WhenAny(ctx.CreateTimer(time.Hour), ctx.WaitForExternalEvent("Go")).Await(nil)
		}).
		addOrchestrator("Done", func(*orchestration.Context) (any, error) { return nil, nil })
}

// waitForTimer waits until instance id has a timer in the index.
func waitForTimer(t *testing.T, hub *persistence.Hub, id string) {
	t.Helper()
	waitFor(t, "the timer of "+id+" in the index", func() bool { return len(timersOf(t, hub, id)) > 0 })
}

func TestDueTimerReachesItsInstance(t *testing.T) {
	checkNoGoroutineLeft(t)
	hub := openTestHub(t, 2)
	n := startTestNode(t, hub, timerRegistry(), nodeOptions{})
	for _, tc := range []struct {
		name, orchestrator string
		input              any
	}{
		{"one timer", "Sleep", 20 * time.Millisecond},
		{"a timer already due when created", "SleepUntil", time.Now().Add(-time.Hour)},
		{"timers one after another", "SleepThrice", 5 * time.Millisecond},
		{"a zero timer", "Sleep", time.Duration(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "due-" + tc.name
			startTestInstance(t, n, id, tc.orchestrator, tc.input)
			waitForStatus(t, hub, id, persistence.StatusCompleted)
			if left := timersOf(t, hub, id); len(left) != 0 {
				t.Fatalf("fired timers left in the index: %v", left)
			}
		})
	}
}

// The scheduler keeps one OS timer, armed for the earliest entry: a timer
// due before the one it is armed for re-arms it.
func TestEarlierTimerFiresBeforeALaterOneArmedFirst(t *testing.T) {
	checkNoGoroutineLeft(t)
	hub := openTestHub(t, 1)
	n := startTestNode(t, hub, timerRegistry(), nodeOptions{})
	startTestInstance(t, n, "late", "Sleep", time.Hour)
	waitForTimer(t, hub, "late")
	startTestInstance(t, n, "early", "Sleep", 10*time.Millisecond)
	waitForStatus(t, hub, "early", persistence.StatusCompleted)
	if got := instanceStatus(t, hub, "late"); got != persistence.StatusRunning {
		t.Fatalf("the hour-long sleeper is %s, want Running", got)
	}
	if left := timersOf(t, hub, "late"); len(left) != 1 {
		t.Fatalf("the hour-long sleeper's timers: %v, want one", left)
	}
}

func TestTimersOfManyInstancesAllReachTheirInstances(t *testing.T) {
	checkNoGoroutineLeft(t)
	hub := openTestHub(t, 2)
	n := startTestNode(t, hub, timerRegistry(), nodeOptions{})
	const instances = 60
	for i := 0; i < instances; i++ {
		// Due in an order other than the order of creation.
		startTestInstance(t, n, fmt.Sprint("many-", i), "Sleep", time.Duration((i*7)%instances)*time.Millisecond)
	}
	for i := 0; i < instances; i++ {
		waitForStatus(t, hub, fmt.Sprint("many-", i), persistence.StatusCompleted)
	}
}

// A node finds the timers that fell due while it was down in the index
// when it starts, and fires them at once: no instance needs to be active
// for its timer to fire.
func TestOverdueTimerFiresAtOnceWhenNodeStarts(t *testing.T) {
	checkNoGoroutineLeft(t)
	hub := openTestHub(t, 2)
	clock := &testClock{}
	first := startTestNode(t, hub, timerRegistry(), nodeOptions{now: clock.Now})
	startTestInstance(t, first, "overdue", "Sleep", time.Hour)
	waitForTimer(t, hub, "overdue")
	stopTestNode(t, first)

	clock.advance(2 * time.Hour)
	startTestNode(t, hub, timerRegistry(), nodeOptions{now: clock.Now})
	waitForStatus(t, hub, "overdue", persistence.StatusCompleted)
}

// A timer whose instance ended while it waited leaves the index with the
// instance's last commit.
func TestTimerOfInstanceThatEndedLeavesTheIndex(t *testing.T) {
	checkNoGoroutineLeft(t)
	hub := openTestHub(t, 2)
	n := startTestNode(t, hub, timerRegistry(), nodeOptions{})
	startTestInstance(t, n, "raced", "SleepOrGo", nil)
	waitForTimer(t, hub, "raced")
	raiseTestEvent(t, n, "raced", "Go")
	waitForStatus(t, hub, "raced", persistence.StatusCompleted)
	if left := timersOf(t, hub, "raced"); len(left) != 0 {
		t.Fatalf("the timer of an instance that ended is still in the index: %v", left)
	}
}

// An index entry that fires for an instance that does not wait for it
// (left by a crash, or an older version) is removed when it fires, and
// the instance is left as it was.
func TestTimerNobodyWaitsForLeavesTheIndexWhenItFires(t *testing.T) {
	for _, tc := range []struct {
		name         string
		orchestrator string // run before the stray entry appears; "" for none
		want         persistence.Status
	}{
		{"instance never existed", "", 0},
		{"instance completed", "Done", persistence.StatusCompleted},
		{"instance waits for something else", "WaitForGo", persistence.StatusRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoGoroutineLeft(t)
			hub := openTestHub(t, 2)
			const id = "stray"
			if tc.orchestrator != "" {
				n := startTestNode(t, hub, timerRegistry(), nodeOptions{})
				startTestInstance(t, n, id, tc.orchestrator, nil)
				waitForStatus(t, hub, id, tc.want)
				stopTestNode(t, n)
			}
			putTimer(t, hub, id, 99, time.Now().Add(-time.Minute))
			startTestNode(t, hub, timerRegistry(), nodeOptions{})
			waitFor(t, "the stray timer to leave the index", func() bool { return len(timersOf(t, hub, id)) == 0 })
			if got := instanceStatus(t, hub, id); got != tc.want {
				t.Fatalf("instance is %v, want %v", got, tc.want)
			}
		})
	}
}

// A timer message that never reached its instance is sent again once the
// scheduler's resend delay has passed, as long as the entry is still in
// the index. Here the message is lost with the instance actor that held
// it: loading the instance panics (a bug in this package would), until
// its supervisor gives up and stops the actor with the message in its
// mailbox.
func TestTimerMessageThatWasLostIsSentAgain(t *testing.T) {
	checkNoGoroutineLeft(t)
	hub := openTestHub(t, 1)
	clock := &testClock{}
	first := startTestNode(t, hub, timerRegistry(), nodeOptions{now: clock.Now})
	startTestInstance(t, first, "lost", "Sleep", time.Hour)
	waitForTimer(t, hub, "lost")
	stopTestNode(t, first)

	// instanceSupervisor restarts a failing actor 5 times within 10 s,
	// and stops it on the sixth failure.
	const failures = 6
	reg := timerRegistry()
	reg.panicOnNextLookups("Sleep", failures)
	clock.advance(2 * time.Hour)
	n := startTestNode(t, hub, reg, nodeOptions{now: clock.Now})
	waitFor(t, "the instance actor to fail to load", func() bool { return reg.lookupsOf("Sleep") >= failures })

	// Each round moves the clock past the resend delay and wakes the
	// scheduler with a timer due long ago; rounds go on until the instance
	// got its timer (the partition may hear of the stopped actor only
	// after the first resend, which is then lost too).
	deadline := time.Now().Add(waitDeadline)
	round := 0
	for ; instanceStatus(t, hub, "lost") != persistence.StatusCompleted; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("the lost timer was not sent again in %d rounds", round)
		}
		clock.advance(resendAfter + time.Second)
		tick := fmt.Sprint("tick-", round)
		startTestInstance(t, n, tick, "SleepUntil", time.Unix(1, 0))
		waitForStatus(t, hub, tick, persistence.StatusCompleted)
	}
	if round == 0 {
		t.Fatalf("the instance got its timer without a resend: does instanceSupervisor still stop an actor on failure %d?", failures)
	}
	if got := reg.lookupsOf("Sleep"); got <= failures {
		t.Fatalf("%d lookups of Sleep: the instance was never loaded again", got)
	}
}

// An instance that cannot be loaded (here: its orchestrator is not
// registered on this node) is left on disk as it is, its due timer
// included, so that it resumes once a node can run it.
func TestTimerOfInstanceThatCannotBeLoadedIsKept(t *testing.T) {
	checkNoGoroutineLeft(t)
	hub := openTestHub(t, 2)
	clock := &testClock{}
	first := startTestNode(t, hub, timerRegistry(), nodeOptions{now: clock.Now})
	startTestInstance(t, first, "broken", "Sleep", time.Hour)
	waitForTimer(t, hub, "broken")
	stopTestNode(t, first)

	clock.advance(2 * time.Hour)
	without := newTestRegistry()
	second := startTestNode(t, hub, without, nodeOptions{now: clock.Now})
	// The instance's mailbox holds the timer message, then this event:
	// once the event is refused, the timer message has been handled.
	if err := raiseEventError(t, second, "broken", "Go"); err == nil {
		t.Fatal("an instance that cannot be loaded took an event")
	}
	stopTestNode(t, second)
	if left := timersOf(t, hub, "broken"); len(left) != 1 {
		t.Errorf("timers of the instance that could not be loaded: %v, want its one timer", left)
	}

	startTestNode(t, hub, timerRegistry(), nodeOptions{now: clock.Now})
	waitForStatus(t, hub, "broken", persistence.StatusCompleted)
}
