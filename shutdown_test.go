package durable_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// TestShutdownUnderLoadLosesNothingAcknowledgedAndLeavesNoGoroutine:
// Shutdown while clients start instances and activities run. Every call
// either succeeds (and its instance finishes after the restart) or fails
// with a retryable error (ErrClosed, ErrUnavailable); no call hangs; the
// activities running at shutdown see their context canceled, their results
// are discarded and they run again on the next start; Shutdown returns
// before its deadline; and no goroutine of the runtime is left behind.
func TestShutdownUnderLoadLosesNothingAcknowledgedAndLeavesNoGoroutine(t *testing.T) {
	dir := t.TempDir()
	var first atomic.Bool
	first.Store(true)
	var canceled, runs atomic.Int32
	started := make(chan struct{}, 1)
	register := func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Job", func(ctx *orchestration.Context) (any, error) {
			var n int
			if err := ctx.Input(&n); err != nil {
				return nil, err
			}
			return orchestration.Await[int](ctx.CallActivity("Work", n))
		}))
		must(rt.RegisterActivity("Work", func(ctx context.Context, n int) (int, error) {
			runs.Add(1)
			if first.Load() && n%7 == 0 {
				// A long activity: it runs until the shutdown cancels it,
				// and returns a result that must be discarded.
				select {
				case started <- struct{}{}:
				default:
				}
				<-ctx.Done()
				canceled.Add(1)
				return -1, nil
			}
			return 2 * n, nil
		}))
	}
	before := runtime.NumGoroutine()
	rt, err := durable.Open(durable.Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	register(rt)
	must(rt.Start())

	var (
		mu    sync.Mutex
		acked = map[string]int{}
		wg    sync.WaitGroup
		stop  atomic.Bool
		bad   = make(chan error, 8)
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				n := w*100000 + i
				id := fmt.Sprintf("job-%d", n)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := rt.Client().Start(ctx, "Job", n, durable.WithInstanceID(id))
				cancel()
				switch {
				case err == nil:
					mu.Lock()
					acked[id] = n
					mu.Unlock()
				case errors.Is(err, durable.ErrClosed), errors.Is(err, durable.ErrUnavailable):
					return // retryable: the node is going away
				default:
					bad <- fmt.Errorf("start %s during shutdown: %w", id, err)
					return
				}
			}
		}()
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("no long activity started")
	}
	time.Sleep(20 * time.Millisecond) // more starts in flight
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rt.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	stop.Store(true)
	wg.Wait()
	close(bad)
	for err := range bad {
		t.Error(err)
	}
	if _, err := rt.Client().Start(context.Background(), "Job", 1); !errors.Is(err, durable.ErrClosed) {
		t.Fatalf("a start after Shutdown: %v, want ErrClosed", err)
	}
	if canceled.Load() == 0 {
		t.Fatal("no running activity saw its context canceled")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before Open, %d after Shutdown:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}

	// Restart: every acknowledged start finishes with the right output,
	// the canceled activities' results having been discarded.
	first.Store(false)
	runsBefore := runs.Load()
	rt2 := open(t, durable.Options{Dir: dir}, register)
	ctx := waitCtx(t)
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no start was acknowledged")
	}
	for id, n := range acked {
		st, err := rt2.Client().WaitForCompletion(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != fmt.Sprint(2*n) {
			t.Fatalf("%s: %s %s, want Completed %d", id, st.RuntimeStatus, st.Output, 2*n)
		}
	}
	if runs.Load() == runsBefore {
		t.Fatal("nothing was re-dispatched after the restart")
	}
	t.Logf("%d starts acknowledged; %d activities canceled by the shutdown; %d activity runs after the restart", len(acked), canceled.Load(), runs.Load()-runsBefore)
}
