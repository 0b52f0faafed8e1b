package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// waitDeadline bounds every wait of these tests. It is a guard against a
// hang, not a measure of speed: the conditions awaited take milliseconds.
const waitDeadline = 10 * time.Second

// waitFor polls cond until it holds, failing the test after waitDeadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// receive returns the next value from ch, failing the test after
// waitDeadline.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitDeadline):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// checkNoGoroutineLeft fails the test if, once its cleanups have run, more
// goroutines are alive than when it was called. Call it first, so that its
// check runs after every other cleanup (they run last-in first-out). Tests
// that call it must not run in parallel.
func checkNoGoroutineLeft(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// Goroutines that were told to stop may still be on their way out.
		deadline := time.Now().Add(waitDeadline)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines before the test, %d after:\n%s", before, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// testClock is a clock the test moves forward by hand, on top of the real
// one (OS timers still run on real time).
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// testLog collects a test's logs and prints them only if the test fails.
// Writes after the test has ended (a goroutine on its way out) are kept
// and ignored, never sent to t.Log.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newTestLogger(t *testing.T) *slog.Logger {
	l := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Logf("logs:\n%s", strings.TrimSpace(l.buf.String()))
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// testRegistry is a Registry a test fills by hand. It counts the lookups
// of each orchestrator (one per load of an instance, one per start), and
// can make the next lookups of a name panic, as a bug in this package
// would: the instance actor then fails and is restarted by its supervisor.
type testRegistry struct {
	mu            sync.Mutex
	orchestrators map[string]orchestration.Orchestrator
	activities    map[string]ActivityFunc
	lookups       map[string]int
	panics        map[string]int
}

func newTestRegistry() *testRegistry {
	return &testRegistry{
		orchestrators: map[string]orchestration.Orchestrator{},
		activities:    map[string]ActivityFunc{},
		lookups:       map[string]int{},
		panics:        map[string]int{},
	}
}

func (r *testRegistry) addOrchestrator(name string, fn orchestration.Orchestrator) *testRegistry {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.orchestrators[name] = fn
	return r
}

func (r *testRegistry) addActivity(name string, fn ActivityFunc) *testRegistry {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.activities[name] = fn
	return r
}

// panicOnNextLookups makes the next n lookups of orchestrator name panic.
func (r *testRegistry) panicOnNextLookups(name string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.panics[name] = n
}

// lookupsOf counts the lookups of orchestrator name so far.
func (r *testRegistry) lookupsOf(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[name]
}

func (r *testRegistry) Orchestrator(name string) (orchestration.Orchestrator, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups[name]++
	if r.panics[name] > 0 {
		r.panics[name]--
		panic("test registry: lookup of " + name + " fails")
	}
	fn, ok := r.orchestrators[name]
	return fn, ok
}

func (r *testRegistry) Activity(name string) (ActivityFunc, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn, ok := r.activities[name]
	return fn, ok
}

func (r *testRegistry) Entity(string) (orchestration.EntityFunc, bool) { return nil, false }

// instanceStatus reads instance id's status from the store (0 if it does
// not exist).
func instanceStatus(t *testing.T, hub *persistence.Hub, id string) persistence.Status {
	t.Helper()
	rec, err := hub.Partition(hub.PartitionOf(id)).LoadInstance(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("load instance %s: %v", id, err)
	}
	return rec.Status
}

// waitForStatus waits until instance id has status want in the store.
func waitForStatus(t *testing.T, hub *persistence.Hub, id string, want persistence.Status) {
	t.Helper()
	waitFor(t, fmt.Sprintf("instance %s to be %s", id, want), func() bool { return instanceStatus(t, hub, id) == want })
}

// timersOf returns instance id's entries in the due-timer index, due or
// not.
func timersOf(t *testing.T, hub *persistence.Hub, id string) []persistence.TimerEntry {
	t.Helper()
	all, err := hub.Partition(hub.PartitionOf(id)).DueTimers(time.Unix(0, 1<<62), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []persistence.TimerEntry
	for _, e := range all {
		if e.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// putTimer writes an entry of the due-timer index directly, as a crash or
// an older version could have left it.
func putTimer(t *testing.T, hub *persistence.Hub, id string, task uint64, due time.Time) {
	t.Helper()
	b := &persistence.Batch{}
	b.PutTimer(id, task, due)
	if err := hub.Partition(hub.PartitionOf(id)).Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// testLoggerFactory sends an actor system's logs to the test's log.
func testLoggerFactory(t *testing.T) func(*actor.ActorSystem) *slog.Logger {
	log := newTestLogger(t)
	return func(*actor.ActorSystem) *slog.Logger { return log }
}
