package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// W5: n instances each wait for the external event "Go". The harness
// measures the process's memory while they all wait (their actors
// passivated after the idle timeout), then raises one event to each from
// -c workers and times the events until every instance has completed with
// the right output.

const (
	w5Event           = "Go"
	w5DefaultIdle     = time.Second
	defaultEntityConc = 256 // W5 and W6: workers when -c is not given
)

func w5InstanceID(i int) string { return fmt.Sprintf("w5-%07d", i) }

// waitForGo waits for the event "Go" and returns "<its input> <the event's
// payload>", so the output proves the right event reached the right
// instance.
func waitForGo(ctx *orchestration.Context) (any, error) {
	var i int
	if err := ctx.Input(&i); err != nil {
		return nil, err
	}
	payload, err := orchestration.Await[string](ctx.WaitForExternalEvent(w5Event))
	if err != nil {
		return nil, err
	}
	return fmt.Sprintf("%d %s", i, payload), nil
}

func w5Payload(i int) string { return fmt.Sprintf("go-%d", i) }

func w5Want(i int) string { return fmt.Sprintf("%d %s", i, w5Payload(i)) }

func runW5(ctx context.Context, w *Workload, cfg Config) *Result {
	n := orDefault(cfg.N, w.DefaultN)
	conc := orDefault(cfg.Concurrency, defaultEntityConc)
	idle := cfg.W5Idle
	if idle <= 0 {
		idle = w5DefaultIdle
	}
	r := newResult(w, cfg, n)
	r.Concurrency = conc
	r.IdleTimeoutMs = round(ms(idle), 1)

	// Everything the harness itself keeps per instance is allocated before
	// the baseline, so that it does not count as the instances' memory.
	ids := make([]string, n)
	for i := range ids {
		ids[i] = w5InstanceID(i)
	}
	lat := make([]time.Duration, n)

	wcfg := cfg
	wcfg.IdleTimeout = idle
	rt, dir, err := openRuntime(wcfg, "W5", func(rt *durable.Runtime) error {
		return rt.RegisterOrchestrator("WaitForGo", waitForGo)
	})
	if err != nil {
		return failed(r, err)
	}
	defer os.RemoveAll(dir)
	defer rt.Close()
	c := rt.Client()

	r.MemoryBaseline = sampleMemory()

	// Start every instance; each runs to its wait and commits.
	t0 := time.Now()
	if bad, err := parallel(n, conc, func(i int) error {
		_, err := c.Start(ctx, "WaitForGo", i, durable.WithInstanceID(ids[i]))
		return err
	}); err != nil {
		r.Wrong = bad
		return failed(r, fmt.Errorf("start: %d failed, first: %w", bad, err))
	}
	// An instance waits once its first turn is committed: status Running.
	if bad, err := parallel(n, conc, func(i int) error { return awaitRunning(ctx, c, ids[i]) }); err != nil {
		r.Wrong = bad
		return failed(r, fmt.Errorf("reach the wait: %d failed, first: %w", bad, err))
	}
	started := time.Since(t0)
	r.StartedPerSecond = round(float64(n)/started.Seconds(), 1)
	r.MemoryAllWaiting = sampleMemory()

	// Let every actor reach its idle timeout and passivate (the last ones
	// started just now), then measure again: this is the waiting figure.
	sleepCtx(ctx, 2*idle+500*time.Millisecond)
	r.MemoryPassivated = sampleMemory()
	b, p := r.MemoryBaseline, r.MemoryPassivated
	rss := perInstance(b.VmRSS, p.VmRSS, n)
	heap := perInstance(b.HeapInuse, p.HeapInuse, n)
	r.WaitingBytesPerInstance, r.WaitingHeapBytesPerInstance = &rss, &heap
	r.WaitingBytesMeasure = fmt.Sprintf("VmRSS after - before starting the instances, / n, after GC and FreeOSMemory, %v after the last instance reached its wait (idle timeout %v: actors passivated)", 2*idle+500*time.Millisecond, idle)

	// Raise one event to each instance and wait for it to complete.
	sp := startSpan(rt)
	bad, err := parallel(n, conc, func(i int) error {
		t := time.Now()
		if err := c.RaiseEvent(ctx, ids[i], w5Event, w5Payload(i)); err != nil {
			return fmt.Errorf("raise to %s: %w", ids[i], err)
		}
		st, err := c.WaitForCompletion(ctx, ids[i])
		lat[i] = time.Since(t)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", ids[i], err)
		}
		if st.RuntimeStatus != durable.StatusCompleted {
			return fmt.Errorf("instance %s: %s %+v", ids[i], st.RuntimeStatus, st.Failure)
		}
		var got string
		if err := json.Unmarshal(st.Output, &got); err != nil || got != w5Want(i) {
			return fmt.Errorf("instance %s: output %s, want %q", ids[i], st.Output, w5Want(i))
		}
		return nil
	})
	fill(r, lat, sp.end(), n, bad, err)
	// The same measurement once every instance has completed and its actor
	// passivated: what stays resident whether or not anything waits (the
	// store's memory tables and caches, high-water marks of maps).
	sleepCtx(ctx, 2*idle+500*time.Millisecond)
	r.MemoryCompleted = sampleMemory()
	r.Note = fmt.Sprintf("per_second: events raised per second, each to a passivated instance, until every instance completed (raise -> verified completion, %d workers); waiting memory from VmRSS (waiting_bytes_measure)", conc)
	return r
}

// awaitRunning polls the instance's status until it is Running (its first
// turn, up to the wait, is committed).
func awaitRunning(ctx context.Context, c *durable.Client, id string) error {
	for {
		st, err := c.Status(ctx, id)
		if err != nil {
			return fmt.Errorf("status of %s: %w", id, err)
		}
		switch st.RuntimeStatus {
		case durable.StatusRunning:
			return nil
		case durable.StatusPending:
		default:
			return fmt.Errorf("instance %s is %s before its event: %+v", id, st.RuntimeStatus, st.Failure)
		}
		if !sleepCtx(ctx, 5*time.Millisecond) {
			return fmt.Errorf("instance %s still %s: %w", id, st.RuntimeStatus, ctx.Err())
		}
	}
}

// sleepCtx sleeps for d, or until ctx ends (then it returns false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
