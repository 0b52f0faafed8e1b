package actors

import (
	"fmt"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

func TestDispatcherRunsEveryScheduledMailbox(t *testing.T) {
	checkNoGoroutineLeft(t)
	for _, workers := range []int{1, 4, 32} {
		t.Run(fmt.Sprint(workers, " workers"), func(t *testing.T) {
			d := newPoolDispatcher(workers, 10)
			defer d.close()
			const mailboxes = 1000
			var ran sync.WaitGroup
			ran.Add(mailboxes)
			for i := 0; i < mailboxes; i++ {
				d.Schedule(ran.Done)
			}
			done := make(chan struct{})
			go func() { ran.Wait(); close(done) }()
			receive(t, "every mailbox to run", done)
		})
	}
}

// Schedule never queues a mailbox behind busy workers: with every worker
// held by a mailbox that waits for the others, they all still run, at once.
func TestDispatcherRunsMailboxesAtOnceWhenEveryWorkerIsBusy(t *testing.T) {
	checkNoGoroutineLeft(t)
	const workers, mailboxes = 2, 6
	d := newPoolDispatcher(workers, 10)
	defer d.close()
	abort := make(chan struct{}) // frees the workers if the test fails
	defer close(abort)
	var started sync.WaitGroup
	started.Add(mailboxes)
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	var finished sync.WaitGroup
	finished.Add(mailboxes)
	scheduled := make(chan struct{})
	go func() { // Schedule blocking would fail the test, not hang it
		defer close(scheduled)
		for i := 0; i < mailboxes; i++ {
			d.Schedule(func() {
				defer finished.Done()
				started.Done()
				select { // holds its goroutine until every mailbox runs
				case <-allStarted:
				case <-abort:
				}
			})
		}
	}()
	receive(t, "Schedule to return with every worker busy", scheduled)
	receive(t, fmt.Sprintf("%d mailboxes to run at once on %d workers", mailboxes, workers), allStarted)
	done := make(chan struct{})
	go func() { finished.Wait(); close(done) }()
	receive(t, "every mailbox to finish", done)
}

func TestDispatcherCloseLeavesNoGoroutineBehind(t *testing.T) {
	checkNoGoroutineLeft(t)
	d := newPoolDispatcher(16, 10)
	var ran sync.WaitGroup
	ran.Add(100)
	for i := 0; i < 100; i++ {
		d.Schedule(ran.Done)
	}
	ran.Wait()
	d.close() // the check at the end of the test sees the workers gone
}

// A mailbox scheduled after close (protoactor may still deliver a message
// to a stopped actor system) runs on a goroutine of its own: Schedule
// never blocks.
func TestDispatcherStillRunsMailboxScheduledAfterClose(t *testing.T) {
	checkNoGoroutineLeft(t)
	d := newPoolDispatcher(2, 10)
	d.close()
	ran := make(chan struct{})
	d.Schedule(func() { close(ran) })
	receive(t, "the late mailbox to run", ran)
}

func TestDispatcherReportsItsThroughput(t *testing.T) {
	d := newPoolDispatcher(1, 300)
	defer d.close()
	if got := d.Throughput(); got != 300 {
		t.Fatalf("Throughput() = %d, want 300", got)
	}
}

// sequenceActor reports the numbers it receives, in the order it receives
// them.
type sequenceActor struct{ got chan<- int }

func (a *sequenceActor) Receive(ctx actor.Context) {
	if n, ok := ctx.Message().(int); ok {
		a.got <- n
	}
}

// Actors run on the pool get every message sent to them, each actor in the
// order its messages were sent, with mailboxes yielding their worker every
// Throughput messages.
func TestDispatcherDeliversEveryMessageToItsActorsInOrder(t *testing.T) {
	checkNoGoroutineLeft(t)
	const actors, messages = 20, 200
	d := newPoolDispatcher(4, 7)
	defer d.close()
	system := actor.NewActorSystem(actor.WithLoggerFactory(testLoggerFactory(t)))
	defer system.Shutdown()
	inboxes := make([]chan int, actors)
	pids := make([]*actor.PID, actors)
	for i := range pids {
		inboxes[i] = make(chan int, messages)
		got := inboxes[i]
		pids[i] = system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &sequenceActor{got: got} },
			actor.WithDispatcher(d)))
	}
	for m := 0; m < messages; m++ {
		for _, pid := range pids {
			system.Root.Send(pid, m)
		}
	}
	for i, inbox := range inboxes {
		for m := 0; m < messages; m++ {
			if got := receive(t, fmt.Sprintf("message %d of actor %d", m, i), inbox); got != m {
				t.Fatalf("actor %d got message %d, want %d", i, got, m)
			}
		}
	}
	for _, pid := range pids {
		if err := system.Root.StopFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestActivityDispatcherRunsEachMailboxOnAGoroutineOfItsOwn(t *testing.T) {
	checkNoGoroutineLeft(t)
	var d activityDispatcher
	if d.Throughput() <= 0 {
		t.Fatalf("throughput %d", d.Throughput())
	}
	// A blocked run must not hold up the next one.
	release := make(chan struct{})
	blocked, ran := make(chan struct{}), make(chan struct{})
	d.Schedule(func() { close(blocked); <-release })
	<-blocked
	d.Schedule(func() {
		var deep func(n int) int // uses more stack than the grown size
		deep = func(n int) int {
			var pad [256]byte
			if n == 0 {
				return int(pad[0])
			}
			return deep(n-1) + int(pad[n%256])
		}
		_ = deep(200)
		close(ran)
	})
	<-ran
	close(release)
}
