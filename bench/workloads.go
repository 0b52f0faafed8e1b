package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/metrics"
	"github.com/durable-go/durable/orchestration"
)

// Config is what every workload gets: the flags, resolved.
type Config struct {
	N           int     // 0: the workload's default
	Concurrency int     // 0: the workload's default
	Rate        float64 // W1: open-loop starts per second (0: -c workers)
	Partitions  int     // 0: durable's default
	NoSync      bool
	FanOut      int           // W2: activities per instance
	Entities    int           // W6: counters (0: 1000)
	W5Idle      time.Duration // W5: the instances' idle timeout (-idle; 0: 1s)
	// IdleTimeout is durable.Options.IdleTimeout of the runtime opened
	// (0: durable's default, 30s). W5 sets it to W5Idle.
	IdleTimeout time.Duration
	Dir         string
	Timeout     time.Duration
	Logger      *slog.Logger
	FsyncMs     float64
	// Metrics runs the runtimes observed by a metrics.Metrics (what
	// `durable serve` does by default), to measure what observing costs.
	Metrics bool
	// Cluster, for W1, runs the workload on a cluster of this many
	// runtimes in this process (loopback ports, one shared hub directory)
	// instead of on one runtime (0: one runtime, no cluster).
	Cluster int
}

func (c Config) mode() string {
	if c.NoSync {
		return "nosync"
	}
	return "sync"
}

func (c Config) durability() string {
	if c.NoSync {
		return "process crash (commits not fsynced)"
	}
	return "power cut (every commit fsynced)"
}

// Workload is one row of WORKLOADS.md.
type Workload struct {
	ID          string
	Name        string
	DefaultN    int
	Unit        string
	LatencyOf   string
	Run         func(ctx context.Context, w *Workload, cfg Config) *Result // nil: not implemented yet
	NotYet      string                                                     // why Run is nil
	PeerCapable bool                                                       // the peer program runs it too
	// ClusterCapable: Run honours Config.Cluster (-cluster).
	ClusterCapable bool
}

var workloads = []*Workload{
	{ID: "W1", Name: "hello-cities", DefaultN: 2000, Unit: "instances/s", LatencyOf: "start-to-completion per instance", Run: runW1, PeerCapable: true, ClusterCapable: true},
	{ID: "W2", Name: "fan-out/fan-in", DefaultN: 20, Unit: "activities/s", LatencyOf: "start-to-completion per instance", Run: runW2, PeerCapable: true},
	{ID: "W3", Name: "long chain", DefaultN: 5000, Unit: "steps/s", LatencyOf: "gap between consecutive activity executions (one step)", Run: runW3, PeerCapable: true},
	{ID: "W4", Name: "crash", DefaultN: 1000, Unit: "instances/s", LatencyOf: "restart to completion per instance", Run: runW4},
	{ID: "W5", Name: "waiting", DefaultN: 100_000, Unit: "events/s", LatencyOf: "RaiseEvent call to verified completion per instance", Run: runW5},
	{ID: "W6", Name: "entities", DefaultN: 100_000, Unit: "ops/s", LatencyOf: "one SignalEntity call (returns once the signal is durable and applied)", Run: runW6},
}

func workloadByID(id string) *Workload {
	for _, w := range workloads {
		if w.ID == id {
			return w
		}
	}
	return nil
}

var errNotImplemented = errors.New("not yet implemented")

// --- functions under test -------------------------------------------------

var cities = []string{"Tokyo", "Seattle", "London"}

var helloWant = []string{"Hello Tokyo!", "Hello Seattle!", "Hello London!"}

func helloCities(ctx *orchestration.Context) (any, error) {
	out := make([]string, 0, len(cities))
	for _, city := range cities {
		var s string
		if err := ctx.CallActivity("Hello", city).Await(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func hello(_ context.Context, city string) (string, error) { return "Hello " + city + "!", nil }

// fanOutFanIn schedules all Double(i) first, then awaits each: a real
// fan-out/fan-in (there is no WhenAll yet).
func fanOutFanIn(ctx *orchestration.Context) (any, error) {
	var n int
	if err := ctx.Input(&n); err != nil {
		return nil, err
	}
	tasks := make([]orchestration.Task, n)
	for i := range tasks {
		tasks[i] = ctx.CallActivity("Double", i)
	}
	sum := 0
	for _, t := range tasks {
		d, err := orchestration.Await[int](t)
		if err != nil {
			return nil, err
		}
		sum += d
	}
	return sum, nil
}

func double(_ context.Context, i int) (int, error) { return 2 * i, nil }

// fanOutWant is the sum of 2*i for i in 0..n-1.
func fanOutWant(n int) int { return n * (n - 1) }

// chain calls Step(i) for i in 0..n-1 in sequence; each returns i, and the
// orchestrator checks it, so the output n proves every step ran in order.
func chain(ctx *orchestration.Context) (any, error) {
	var n int
	if err := ctx.Input(&n); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		got, err := orchestration.Await[int](ctx.CallActivity("Step", i))
		if err != nil {
			return nil, err
		}
		if got != i {
			return nil, fmt.Errorf("step %d returned %d", i, got)
		}
	}
	return n, nil
}

// --- harness helpers -------------------------------------------------------

// openRuntime opens a fresh hub in a new directory under cfg.Dir.
func openRuntime(cfg Config, name string, register func(rt *durable.Runtime) error) (*durable.Runtime, string, error) {
	dir, err := os.MkdirTemp(cfg.Dir, name+"-*")
	if err != nil {
		return nil, "", err
	}
	rt, err := startRuntime(cfg, dir, register)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return rt, dir, nil
}

func startRuntime(cfg Config, dir string, register func(rt *durable.Runtime) error) (*durable.Runtime, error) {
	var obs *metrics.Metrics
	if cfg.Metrics {
		obs = metrics.New()
	}
	rt, err := durable.Open(durable.Options{Dir: dir, Partitions: cfg.Partitions, NoSync: cfg.NoSync, Logger: cfg.Logger, IdleTimeout: cfg.IdleTimeout, Observer: observer(obs)})
	if err != nil {
		return nil, err
	}
	if obs != nil {
		obs.Watch(rt)
	}
	if err := register(rt); err != nil {
		rt.Close()
		return nil, err
	}
	if err := rt.Start(); err != nil {
		rt.Close()
		return nil, err
	}
	return rt, nil
}

func registerHello(rt *durable.Runtime) error {
	return errors.Join(rt.RegisterOrchestrator("HelloCities", helloCities), rt.RegisterActivity("Hello", hello))
}

func newResult(w *Workload, cfg Config, n int) *Result {
	return &Result{
		Workload:   w.ID,
		System:     "durable",
		Mode:       cfg.mode(),
		Durability: cfg.durability(),
		N:          n,
		Partitions: cfg.Partitions,
		Unit:       w.Unit,
		LatencyOf:  w.LatencyOf,
		FsyncMs:    cfg.FsyncMs,
		At:         time.Now().UTC().Format(time.RFC3339),
	}
}

// failures counts the failed instances of a run and keeps the first error.
type failures struct {
	bad   atomic.Int64
	once  sync.Once
	first error
}

func (f *failures) add(n int, err error) {
	f.bad.Add(int64(n))
	f.once.Do(func() { f.first = err })
}

// runOne starts one instance of orchestrator with input, waits for it and
// checks its output with check. The latency runs from since to completion.
func runOne(ctx context.Context, c *durable.Client, orchestrator string, input any,
	check func(out json.RawMessage) error, since time.Time) (time.Duration, error) {
	id, err := c.Start(ctx, orchestrator, input)
	if err != nil {
		return 0, fmt.Errorf("start: %w", err)
	}
	st, err := c.WaitForCompletion(ctx, id)
	lat := time.Since(since)
	switch {
	case err != nil:
		return lat, fmt.Errorf("wait for %s: %w", id, err)
	case st.RuntimeStatus != durable.StatusCompleted:
		return lat, fmt.Errorf("instance %s: %s %+v", id, st.RuntimeStatus, st.Failure)
	}
	if err := check(st.Output); err != nil {
		return lat, fmt.Errorf("instance %s: %w", id, err)
	}
	return lat, nil
}

// parallel runs fn(i) for i in 0..n-1 from conc goroutines and returns the
// number of calls that failed and the first error.
func parallel(n, conc int, fn func(i int) error) (bad int, first error) {
	var (
		next atomic.Int64
		fail failures
		wg   sync.WaitGroup
	)
	for range max(1, min(conc, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					fail.add(1, err)
				}
			}
		}()
	}
	wg.Wait()
	return int(fail.bad.Load()), fail.first
}

// runInstances starts n instances of orchestrator with input, at most conc
// at a time, waits for each, and checks each output with check. Instance i
// is started and waited for through the Client of rts[i mod len(rts)]
// (round-robin over the nodes of a cluster; one runtime otherwise). It
// returns the per-instance start-to-completion latencies, the span from the
// first start to the last completion, and how many outputs were wrong.
func runInstances(ctx context.Context, rts []*durable.Runtime, n, conc int, orchestrator string, input any,
	check func(out json.RawMessage) error) (lat []time.Duration, sp *span, wrong int, firstErr error) {
	lat = make([]time.Duration, n)
	clients := clientsOf(rts)
	sp = startSpan(rts...)
	wrong, firstErr = parallel(n, conc, func(i int) error {
		var err error
		lat[i], err = runOne(ctx, clients[i%len(clients)], orchestrator, input, check, time.Now())
		return err
	})
	return lat, sp.end(), wrong, firstErr
}

// runInstancesAtRate starts n instances of orchestrator at a steady rate
// per second, each at its scheduled time whatever the others do (an open
// loop), waits for each and checks its output. A latency runs from the
// instance's scheduled start, so a start that is late because the system
// is slow counts against it. Instances go round-robin over rts' Clients, as
// in runInstances.
func runInstancesAtRate(ctx context.Context, rts []*durable.Runtime, n int, rate float64, orchestrator string, input any,
	check func(out json.RawMessage) error) (lat []time.Duration, sp *span, wrong int, firstErr error) {
	lat = make([]time.Duration, n)
	var (
		fail failures
		wg   sync.WaitGroup
	)
	interval := time.Duration(float64(time.Second) / rate)
	clients := clientsOf(rts)
	sp = startSpan(rts...)
	for i := 0; i < n; i++ {
		due := sp.start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 && !sleepCtx(ctx, d) {
			fail.add(n-i, fmt.Errorf("%d instances not started: %w", n-i, ctx.Err()))
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if lat[i], err = runOne(ctx, clients[i%len(clients)], orchestrator, input, check, due); err != nil {
				fail.add(1, err)
			}
		}()
	}
	wg.Wait()
	return lat, sp.end(), int(fail.bad.Load()), fail.first
}

// clientsOf returns the Client of each runtime.
func clientsOf(rts []*durable.Runtime) []*durable.Client {
	clients := make([]*durable.Client, len(rts))
	for i, rt := range rts {
		clients[i] = rt.Client()
	}
	return clients
}

func checkHello(out json.RawMessage) error {
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	if !slices.Equal(got, helloWant) {
		return fmt.Errorf("output %s, want %q", out, helloWant)
	}
	return nil
}

func checkInt(want int) func(json.RawMessage) error {
	return func(out json.RawMessage) error {
		var got int
		if err := json.Unmarshal(out, &got); err != nil {
			return fmt.Errorf("output %s: %w", out, err)
		}
		if got != want {
			return fmt.Errorf("output %d, want %d", got, want)
		}
		return nil
	}
}

// span times one timed phase of a workload: its wall-clock time, the CPU
// time (user + system, every thread) the process spent in it, and the
// runtimes' commits and store transactions in it (summed over the nodes of
// a cluster, each of which counts the partitions it hosts). CPU per
// operation is the steadier figure on a shared machine, where other tenants
// stretch the wall clock.
type span struct {
	start          time.Time
	cpu0           time.Duration
	Wall, CPU      time.Duration
	rts            []*durable.Runtime
	stats0, stats1 durable.Stats
}

// startSpan starts timing a phase of rts (none, or nil: track them later
// with track).
func startSpan(rts ...*durable.Runtime) *span {
	timedProfile.start()
	s := &span{start: time.Now(), cpu0: processCPU()}
	s.track(rts...)
	return s
}

// track counts the commits of rts (nil entries skipped) from now on.
func (s *span) track(rts ...*durable.Runtime) {
	s.rts = slices.DeleteFunc(slices.Clone(rts), func(rt *durable.Runtime) bool { return rt == nil })
	s.stats0 = sumStats(s.rts)
}

// end fixes the span's figures at now and returns the span.
func (s *span) end() *span {
	s.Wall, s.CPU = time.Since(s.start), processCPU()-s.cpu0
	timedProfile.stop()
	s.stats1 = sumStats(s.rts)
	return s
}

// sumStats adds up the commit counters of rts.
func sumStats(rts []*durable.Runtime) durable.Stats {
	var sum durable.Stats
	for _, rt := range rts {
		st := rt.Stats()
		sum.Commits += st.Commits
		sum.Transactions += st.Transactions
	}
	return sum
}

func fill(r *Result, lat []time.Duration, sp *span, count int, wrong int, err error) {
	wall := sp.Wall
	r.WallMs = round(ms(wall), 1)
	if wall > 0 {
		r.PerSecond = round(float64(count)/wall.Seconds(), 1)
	}
	r.CPUMs = round(ms(sp.CPU), 1)
	if txns := sp.stats1.Transactions - sp.stats0.Transactions; txns > 0 {
		r.CommitsPerTransaction = round(float64(sp.stats1.Commits-sp.stats0.Commits)/float64(txns), 2)
	}
	if count > 0 {
		r.CPUUsPerOp = round(float64(sp.CPU.Microseconds())/float64(count), 2)
	}
	r.P50Ms = round(percentileMs(lat, 50), 3)
	r.P99Ms = round(percentileMs(lat, 99), 3)
	r.Wrong = wrong
	r.Verified = wrong == 0 && err == nil
	if err != nil {
		r.Error = err.Error()
	}
}

func failed(r *Result, err error) *Result {
	r.Error = err.Error()
	r.Verified = false
	return r
}

// --- W1 ---------------------------------------------------------------------

func runW1(ctx context.Context, w *Workload, cfg Config) *Result {
	n := orDefault(cfg.N, w.DefaultN)
	conc := orDefault(cfg.Concurrency, n)
	r := newResult(w, cfg, n)
	r.Concurrency = conc
	var rts []*durable.Runtime
	if cfg.Cluster > 0 {
		markCluster(r, cfg.Cluster)
		lc, err := openCluster(ctx, cfg, "W1", cfg.Cluster, registerHello)
		if err != nil {
			return failed(r, err)
		}
		defer lc.close()
		lc.describe(r)
		rts = lc.rts
	} else {
		rt, dir, err := openRuntime(cfg, "W1", registerHello)
		if err != nil {
			return failed(r, err)
		}
		defer os.RemoveAll(dir)
		defer rt.Close()
		rts = []*durable.Runtime{rt}
	}
	if cfg.Rate > 0 {
		r.Concurrency = 0
		r.Rate = cfg.Rate
		lat, sp, wrong, err := runInstancesAtRate(ctx, rts, n, cfg.Rate, "HelloCities", nil, checkHello)
		fill(r, lat, sp, n, wrong, err)
		r.Activities = 3 * n
		addNote(r, fmt.Sprintf("open loop: one start every %v (%.0f/s); latency from each instance's scheduled start to its verified completion", time.Duration(float64(time.Second)/cfg.Rate), cfg.Rate))
		return r
	}
	lat, sp, wrong, err := runInstances(ctx, rts, n, conc, "HelloCities", nil, checkHello)
	fill(r, lat, sp, n, wrong, err)
	r.Activities = 3 * n
	return r
}

// addNote appends note to r's note.
func addNote(r *Result, note string) {
	if r.Note != "" {
		r.Note += "; "
	}
	r.Note += note
}

// --- W2 ---------------------------------------------------------------------

func runW2(ctx context.Context, w *Workload, cfg Config) *Result {
	n := orDefault(cfg.N, w.DefaultN)
	conc := orDefault(cfg.Concurrency, n)
	fan := orDefault(cfg.FanOut, 1000)
	r := newResult(w, cfg, n)
	r.Concurrency = conc
	rt, dir, err := openRuntime(cfg, "W2", func(rt *durable.Runtime) error {
		return errors.Join(rt.RegisterOrchestrator("FanOut", fanOutFanIn), rt.RegisterActivity("Double", double))
	})
	if err != nil {
		return failed(r, err)
	}
	defer os.RemoveAll(dir)
	defer rt.Close()
	lat, sp, wrong, err := runInstances(ctx, []*durable.Runtime{rt}, n, conc, "FanOut", fan, checkInt(fanOutWant(fan)))
	fill(r, lat, sp, n*fan, wrong, err)
	r.Activities = n * fan
	if fan != 1000 {
		r.Note = fmt.Sprintf("fan-out %d per instance (WORKLOADS.md: 1000)", fan)
	}
	return r
}

// --- W3 ---------------------------------------------------------------------

func runW3(ctx context.Context, w *Workload, cfg Config) *Result {
	n := orDefault(cfg.N, w.DefaultN)
	r := newResult(w, cfg, n)
	// stamps[i] is when Step(i) last started: the gaps between consecutive
	// steps are the per-step latencies (commit of the result, replay-free
	// resume of the orchestrator, commit of the next scheduling, dispatch).
	stamps := make([]atomic.Int64, n)
	rt, dir, err := openRuntime(cfg, "W3", func(rt *durable.Runtime) error {
		return errors.Join(rt.RegisterOrchestrator("Chain", chain), rt.RegisterActivity("Step", func(_ context.Context, i int) (int, error) {
			if i >= 0 && i < len(stamps) {
				stamps[i].Store(time.Now().UnixNano())
			}
			return i, nil
		}))
	})
	if err != nil {
		return failed(r, err)
	}
	defer os.RemoveAll(dir)
	defer rt.Close()
	_, sp, wrong, err := runInstances(ctx, []*durable.Runtime{rt}, 1, 1, "Chain", n, checkInt(n))
	fill(r, stepGaps(stamps), sp, n, wrong, err)
	r.Activities = n
	r.TimePerStepMs = round(ms(sp.Wall)/float64(n), 4)
	return r
}

func stepGaps(stamps []atomic.Int64) []time.Duration {
	var gaps []time.Duration
	for i := 1; i < len(stamps); i++ {
		a, b := stamps[i-1].Load(), stamps[i].Load()
		if a > 0 && b > a {
			gaps = append(gaps, time.Duration(b-a))
		}
	}
	return gaps
}

// orDefault returns v, or def when v is 0.
func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// observer keeps a nil *metrics.Metrics a nil interface: no observer.
func observer(m *metrics.Metrics) durable.Observer {
	if m == nil {
		return nil
	}
	return m
}
