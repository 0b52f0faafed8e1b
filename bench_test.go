package durable_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// Micro-benchmarks of the hot paths through the public API. The harness in
// bench/ runs the full workloads; these are for profiles (-cpuprofile,
// -memprofile) and before/after comparisons with benchstat.

func benchRuntime(b *testing.B, register func(rt *durable.Runtime)) *durable.Runtime {
	b.Helper()
	rt, err := durable.Open(durable.Options{Dir: b.TempDir(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	register(rt)
	if err := rt.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rt.Close() })
	return rt
}

// BenchmarkHelloCities: one op is one hello-cities instance (start, three
// sequential activities, completion), 256 in flight, on disk, sync.
func BenchmarkHelloCities(b *testing.B) {
	rt := benchRuntime(b, registerHello)
	c := rt.Client()
	ctx := context.Background()
	b.ResetTimer()
	inFlight(b.N, 256, func(i int) {
		id, err := c.Start(ctx, "HelloCities", nil)
		if err != nil {
			b.Error(err)
			return
		}
		st, err := c.WaitForCompletion(ctx, id)
		if err != nil || string(st.Output) != helloOutput {
			b.Errorf("%v %v", st, err)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "instances/s")
}

// BenchmarkActivityDispatch: one op is one activity of a 1000-wide fan-out.
func BenchmarkActivityDispatch(b *testing.B) {
	rt := benchRuntime(b, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("FanOut", func(ctx *orchestration.Context) (any, error) {
			var n int
			_ = ctx.Input(&n)
			tasks := make([]orchestration.Task, n)
			for i := range tasks {
				tasks[i] = ctx.CallActivity("One", nil)
			}
			return nil, ctx.WhenAll(tasks...).Await(nil)
		}))
		must(rt.RegisterActivity("One", func(context.Context) (int, error) { return 1, nil }))
	})
	c := rt.Client()
	ctx := context.Background()
	b.ResetTimer()
	for done := 0; done < b.N; done += 1000 {
		id, err := c.Start(ctx, "FanOut", min(1000, b.N-done))
		if err != nil {
			b.Fatal(err)
		}
		if st, err := c.WaitForCompletion(ctx, id); err != nil || st.RuntimeStatus != durable.StatusCompleted {
			b.Fatalf("%v %v", st, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "activities/s")
}

// BenchmarkInstanceTurn: one op is one step of a long sequential chain: the
// commit of a result, the orchestrator's resumption, the commit of the next
// scheduling and its dispatch.
func BenchmarkInstanceTurn(b *testing.B) {
	rt := benchRuntime(b, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Chain", func(ctx *orchestration.Context) (any, error) {
			var n int
			_ = ctx.Input(&n)
			for i := 0; i < n; i++ {
				if err := ctx.CallActivity("One", nil).Await(nil); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}))
		must(rt.RegisterActivity("One", func(context.Context) error { return nil }))
	})
	c := rt.Client()
	ctx := context.Background()
	b.ResetTimer()
	id, err := c.Start(ctx, "Chain", b.N)
	if err != nil {
		b.Fatal(err)
	}
	if st, err := c.WaitForCompletion(ctx, id); err != nil || st.RuntimeStatus != durable.StatusCompleted {
		b.Fatalf("%v %v", st, err)
	}
}

// BenchmarkEntitySignal: one op is one durable signal to one of 100
// counters, 256 in flight.
func BenchmarkEntitySignal(b *testing.B) {
	rt := benchRuntime(b, registerEntities)
	c := rt.Client()
	ctx := context.Background()
	b.ResetTimer()
	inFlight(b.N, 256, func(i int) {
		if err := c.SignalEntity(ctx, durable.EntityID{Name: "Counter", Key: fmt.Sprint(i % 100)}, "add", 1); err != nil {
			b.Error(err)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signals/s")
}

// BenchmarkRaiseToPassivatedInstance: one op raises an event to an
// instance that waits for it passivated (W5's hot path: activation, replay,
// one turn), 256 in flight.
func BenchmarkRaiseToPassivatedInstance(b *testing.B) {
	rt, err := durable.Open(durable.Options{Dir: b.TempDir(), Logger: quiet, IdleTimeout: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	must(rt.RegisterOrchestrator("Wait", func(ctx *orchestration.Context) (any, error) {
		return orchestration.Await[string](ctx.WaitForExternalEvent("Go"))
	}))
	must(rt.Start())
	b.Cleanup(func() { _ = rt.Close() })
	c := rt.Client()
	ctx := context.Background()
	ids := make([]string, b.N)
	for i := range ids {
		id, err := c.Start(ctx, "Wait", nil)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	time.Sleep(300 * time.Millisecond) // all passivate
	b.ResetTimer()
	inFlight(len(ids), 256, func(i int) {
		id := ids[i]
		if err := c.RaiseEvent(ctx, id, "Go", "go"); err != nil {
			b.Error(err)
			return
		}
		if st, err := c.WaitForCompletion(ctx, id); err != nil || string(st.Output) != `"go"` {
			b.Errorf("%v %v", st, err)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// inFlight runs op(0..n-1) with at most width of them at once.
func inFlight(n, width int, op func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			op(i)
		}()
	}
	wg.Wait()
}
