// Command peer runs workloads W1–W3 of WORKLOADS.md on go-workflows
// (github.com/cschleiden/go-workflows v1.2.0), on its SQLite backend on disk
// and on its in-memory SQLite backend, and prints the same JSON objects as
// durable's harness (bench/), which runs this program with -peer so both
// are measured in the same run.
//
// It is a separate Go module so that durable's module never depends on
// go-workflows.
//
// Configuration, chosen to show go-workflows at its best on one machine:
//   - both backends are wrapped in go-workflows' monoprocess backend (what
//     its own bench does), so workers are woken by channels instead of
//     polling every 200 ms;
//   - the workflow executor cache holds every instance in flight (its
//     default of 128 would make W1 replay histories);
//   - MaxHistorySize is raised (default 10,000 events: W3 with 5000 steps
//     would fail);
//   - sync mode is SQLite synchronous=FULL (WAL fsynced at every commit),
//     nosync is synchronous=OFF; go-workflows/memory keeps nothing on disk.
//   - completion is observed by wrapping the backend's CompleteWorkflowTask
//     (the commit that finishes an instance), not by go-workflows' client
//     WaitForWorkflowInstance, which polls with a backoff of up to 1 s and
//     would add up to a second to each latency; the output is then read
//     with client.GetWorkflowResult and checked.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	"github.com/cschleiden/go-workflows/backend/history"
	"github.com/cschleiden/go-workflows/backend/monoprocess"
	"github.com/cschleiden/go-workflows/backend/sqlite"
	"github.com/cschleiden/go-workflows/client"
	"github.com/cschleiden/go-workflows/core"
	"github.com/cschleiden/go-workflows/worker"
	"github.com/cschleiden/go-workflows/workflow"
	"github.com/google/uuid"
)

// Result is the same JSON object as durable's harness prints (a subset of
// its fields).
type Result struct {
	Workload      string  `json:"workload"`
	System        string  `json:"system"`
	Mode          string  `json:"mode"`
	Durability    string  `json:"durability"`
	N             int     `json:"n"`
	Concurrency   int     `json:"concurrency,omitempty"`
	PerSecond     float64 `json:"per_second"`
	Unit          string  `json:"unit"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	LatencyOf     string  `json:"latency_of"`
	WallMs        float64 `json:"wall_ms"`
	Verified      bool    `json:"verified"`
	Wrong         int     `json:"wrong"`
	Error         string  `json:"error,omitempty"`
	Note          string  `json:"note,omitempty"`
	Activities    int     `json:"activities,omitempty"`
	TimePerStepMs float64 `json:"time_per_step_ms,omitempty"`
	At            string  `json:"at"`
}

type config struct {
	n, conc, fanOut int
	mode            string
	dir             string
	timeout         time.Duration
}

func main() {
	var (
		w        = flag.String("w", "W1,W2,W3", "workloads: a comma list of W1, W2, W3, or all")
		n        = flag.Int("n", 0, "size: instances for W1, W2; steps for W3 (0: the default of WORKLOADS.md)")
		c        = flag.Int("c", 0, "instances in flight at once for W1 and W2 (0: all n)")
		mode     = flag.String("mode", "sync", "sync (SQLite synchronous=FULL) or nosync (synchronous=OFF)")
		dir      = flag.String("dir", "", "data directory (default: a temporary directory, removed after)")
		jsonPath = flag.String("json", "", "append one JSON object per run to this file")
		fanOut   = flag.Int("fanout", 0, "W2: activities per instance (0: 1000)")
		backends = flag.String("backends", "sqlite,memory", "go-workflows backends: sqlite (on disk), memory")
		timeout  = flag.Duration("timeout", 10*time.Minute, "give up on a workload after this long")
		quiet    = flag.Bool("quiet", false, "do not print the table (the harness prints its own)")
		_        = flag.Int("partitions", 0, "ignored (durable only)")
	)
	flag.Parse()
	if *mode != "sync" && *mode != "nosync" {
		fatal(fmt.Errorf("-mode %q: want sync or nosync", *mode))
	}
	cfg := config{n: *n, conc: *c, fanOut: *fanOut, mode: *mode, dir: *dir, timeout: *timeout}
	if cfg.dir == "" {
		tmp, err := os.MkdirTemp("", "peer-bench-*")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(tmp)
		cfg.dir = tmp
	}
	var ids []string
	for _, id := range strings.Split(*w, ",") {
		id = strings.ToUpper(strings.TrimSpace(id))
		switch id {
		case "ALL":
			ids = append(ids, "W1", "W2", "W3")
		case "W1", "W2", "W3":
			ids = append(ids, id)
		case "W4", "W5", "W6":
			fatal(fmt.Errorf("%s is not implemented for the peer", id))
		case "":
		default:
			fatal(fmt.Errorf("unknown workload %q", id))
		}
	}
	var results []*Result
	for _, id := range ids {
		for _, kind := range strings.Split(*backends, ",") {
			kind = strings.TrimSpace(kind)
			if kind != "sqlite" && kind != "memory" {
				fatal(fmt.Errorf("unknown backend %q", kind))
			}
			r := runWorkload(id, kind, cfg)
			results = append(results, r)
			if *jsonPath != "" {
				if err := appendJSON(*jsonPath, r); err != nil {
					fatal(err)
				}
			}
		}
	}
	if !*quiet {
		printTable(os.Stdout, results)
	}
	for _, r := range results {
		if !r.Verified {
			os.Exit(1)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "peer:", err)
	os.Exit(2)
}

// --- workflows and activities ----------------------------------------------

var (
	cities    = []string{"Tokyo", "Seattle", "London"}
	helloWant = []string{"Hello Tokyo!", "Hello Seattle!", "Hello London!"}
)

func HelloCities(ctx workflow.Context) ([]string, error) {
	out := make([]string, 0, len(cities))
	for _, city := range cities {
		s, err := workflow.ExecuteActivity[string](ctx, workflow.DefaultActivityOptions, Hello, city).Get(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func Hello(_ context.Context, city string) (string, error) { return "Hello " + city + "!", nil }

// FanOut schedules all Double(i) first, then waits for each. It waits for
// every future even after a failure and then returns the first error:
// go-workflows fails a workflow task that returns with futures still
// pending ("workflow completed, but there are still pending futures") and
// retries it, so returning early would hang the instance instead of
// reporting the failure.
func FanOut(ctx workflow.Context, n int) (int, error) {
	futures := make([]workflow.Future[int], n)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, Double, i)
	}
	sum := 0
	var first error
	for _, f := range futures {
		d, err := f.Get(ctx)
		if err != nil {
			first = cmp.Or(first, err)
			continue
		}
		sum += d
	}
	return sum, first
}

func Double(_ context.Context, i int) (int, error) { return 2 * i, nil }

// Chain calls Step(i) for i in 0..n-1 in sequence and checks each result.
func Chain(ctx workflow.Context, n int) (int, error) {
	for i := 0; i < n; i++ {
		got, err := workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, Step, i).Get(ctx)
		if err != nil {
			return 0, err
		}
		if got != i {
			return 0, fmt.Errorf("step %d returned %d", i, got)
		}
	}
	return n, nil
}

// stepStamps[i] is when Step(i) last started (W3's per-step latencies).
var stepStamps []atomic.Int64

func Step(_ context.Context, i int) (int, error) {
	if i >= 0 && i < len(stepStamps) {
		stepStamps[i].Store(time.Now().UnixNano())
	}
	return i, nil
}

// --- backend with a completion notification -------------------------------

// notifying wraps a backend and wakes waiters when the commit that finishes
// an instance returns.
type notifying struct {
	backend.Backend
	mu      sync.Mutex
	waiters map[string]chan struct{}
}

func (b *notifying) wait(id string) chan struct{} {
	ch := make(chan struct{})
	b.mu.Lock()
	b.waiters[id] = ch
	b.mu.Unlock()
	return ch
}

func (b *notifying) CompleteWorkflowTask(ctx context.Context, task *backend.WorkflowTask, state core.WorkflowInstanceState,
	executed, activities, timers []*history.Event, workflowEvents []*history.WorkflowEvent) error {
	if err := b.Backend.CompleteWorkflowTask(ctx, task, state, executed, activities, timers, workflowEvents); err != nil {
		return err
	}
	if state == core.WorkflowInstanceStateFinished {
		b.mu.Lock()
		ch := b.waiters[task.WorkflowInstance.InstanceID]
		delete(b.waiters, task.WorkflowInstance.InstanceID)
		b.mu.Unlock()
		if ch != nil {
			close(ch)
		}
	}
	return nil
}

func openBackend(kind, mode, dir string, maxHistory int64) (b *notifying, durability string, err error) {
	defer func() { // go-workflows' constructors panic on errors
		if p := recover(); p != nil {
			err = fmt.Errorf("open go-workflows %s backend: %v", kind, p)
		}
	}()
	opts := sqlite.WithBackendOptions(
		backend.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		backend.WithMaxHistorySize(maxHistory),
	)
	var inner backend.Backend
	switch kind {
	case "sqlite":
		syncMode := "FULL"
		durability = "power cut (SQLite WAL, synchronous=FULL)"
		if mode == "nosync" {
			syncMode = "OFF"
			durability = "process crash (SQLite WAL, synchronous=OFF)"
		}
		inner = sqlite.NewSqliteBackend(filepath.Join(dir, "peer.sqlite")+"?_pragma=synchronous("+syncMode+")", opts)
	case "memory":
		durability = "none (in-memory SQLite)"
		inner = sqlite.NewInMemoryBackend(opts)
	}
	return &notifying{Backend: monoprocess.NewMonoprocessBackend(inner), waiters: map[string]chan struct{}{}}, durability, nil
}

// --- workloads -----------------------------------------------------------------

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func runWorkload(id, kind string, cfg config) *Result {
	r := &Result{Workload: id, System: "go-workflows/" + kind, Mode: cfg.mode, At: time.Now().UTC().Format(time.RFC3339)}
	var (
		n, conc, instances int
		wf                 workflow.Workflow
		input              any
		check              func(b *notifying, c *client.Client, inst *workflow.Instance) error
		maxHistory         int64 = 100_000
	)
	switch id {
	case "W1":
		n = orDefault(cfg.n, 2000)
		conc, instances = orDefault(cfg.conc, n), n
		wf, r.Unit, r.LatencyOf, r.Activities = HelloCities, "instances/s", "start-to-completion per instance", 3*n
		check = func(b *notifying, c *client.Client, inst *workflow.Instance) error {
			out, err := client.GetWorkflowResult[[]string](context.Background(), c, inst, cfg.timeout)
			if err != nil {
				return err
			}
			if !slices.Equal(out, helloWant) {
				return fmt.Errorf("output %q, want %q", out, helloWant)
			}
			return nil
		}
	case "W2":
		n = orDefault(cfg.n, 20)
		fan := orDefault(cfg.fanOut, 1000)
		conc, instances, input = orDefault(cfg.conc, n), n, fan
		wf, r.Unit, r.LatencyOf, r.Activities = FanOut, "activities/s", "start-to-completion per instance", n*fan
		maxHistory = int64(10*fan + 100)
		if fan != 1000 {
			r.Note = fmt.Sprintf("fan-out %d per instance (WORKLOADS.md: 1000)", fan)
		}
		check = checkInt(cfg, fan*(fan-1))
	case "W3":
		n = orDefault(cfg.n, 5000)
		conc, instances, input = 1, 1, n
		wf, r.Unit, r.LatencyOf, r.Activities = Chain, "steps/s", "gap between consecutive activity executions (one step)", n
		maxHistory = int64(10*n + 100)
		stepStamps = make([]atomic.Int64, n)
		check = checkInt(cfg, n)
	}
	r.N, r.Concurrency = n, conc
	if id == "W3" {
		r.Concurrency = 0
	}
	dir, err := os.MkdirTemp(cfg.dir, "peer-"+id+"-"+kind+"-*")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer os.RemoveAll(dir)
	b, durability, err := openBackend(kind, cfg.mode, dir, maxHistory)
	r.Durability = durability
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	wo := worker.DefaultOptions
	wo.WorkflowExecutorCacheSize = max(128, conc+16)
	w := worker.New(b, &wo)
	if err := errors.Join(w.RegisterWorkflow(HelloCities), w.RegisterWorkflow(FanOut), w.RegisterWorkflow(Chain),
		w.RegisterActivity(Hello), w.RegisterActivity(Double), w.RegisterActivity(Step)); err != nil {
		r.Error = err.Error()
		return r
	}
	wctx, stopWorker := context.WithCancel(ctx)
	if err := w.Start(wctx); err != nil {
		stopWorker()
		r.Error = err.Error()
		return r
	}
	defer func() { stopWorker(); _ = w.WaitForCompletion() }()
	c := client.New(b)

	lat := make([]time.Duration, instances)
	var (
		next, bad atomic.Int64
		errOnce   sync.Once
		firstErr  error
		wg        sync.WaitGroup
	)
	fail := func(err error) {
		bad.Add(1)
		errOnce.Do(func() { firstErr = err })
	}
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= instances {
					return
				}
				t0 := time.Now()
				instanceID := uuid.NewString()
				done := b.wait(instanceID)
				var args []any
				if input != nil {
					args = append(args, input)
				}
				inst, err := c.CreateWorkflowInstance(ctx, client.WorkflowInstanceOptions{InstanceID: instanceID}, wf, args...)
				if err != nil {
					fail(fmt.Errorf("create: %w", err))
					continue
				}
				select {
				case <-done:
				case <-ctx.Done():
					fail(fmt.Errorf("instance %s: %w", instanceID, ctx.Err()))
					continue
				}
				err = check(b, c, inst)
				lat[i] = time.Since(t0)
				if err != nil {
					fail(fmt.Errorf("instance %s: %w", instanceID, err))
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	count := instances
	switch id {
	case "W2", "W3":
		count = r.Activities
	}
	r.WallMs = round(ms(wall), 1)
	r.PerSecond = round(float64(count)/wall.Seconds(), 1)
	if id == "W3" {
		lat = stepGaps(stepStamps)
		r.TimePerStepMs = round(ms(wall)/float64(n), 4)
	}
	r.P50Ms, r.P99Ms = round(percentileMs(lat, 50), 3), round(percentileMs(lat, 99), 3)
	r.Wrong = int(bad.Load())
	r.Verified = r.Wrong == 0 && firstErr == nil
	if firstErr != nil {
		r.Error = firstErr.Error()
	}
	return r
}

func checkInt(cfg config, want int) func(b *notifying, c *client.Client, inst *workflow.Instance) error {
	return func(b *notifying, c *client.Client, inst *workflow.Instance) error {
		got, err := client.GetWorkflowResult[int](context.Background(), c, inst, cfg.timeout)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("output %d, want %d", got, want)
		}
		return nil
	}
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

// --- figures and output ----------------------------------------------------

func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	rank = max(0, min(rank, len(s)-1))
	return ms(s[rank])
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func appendJSON(path string, r *Result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printTable(w io.Writer, results []*Result) {
	fmt.Fprintf(w, "%d cores, GOMAXPROCS=%d, %s %s/%s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tsystem\tmode\tn\tper second\tunit\tp50 ms\tp99 ms\twall ms\tverified\terror")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%s\t%.2f\t%.2f\t%.0f\t%v\t%s\n",
			r.Workload, r.System, r.Mode, r.N, r.PerSecond, r.Unit, r.P50Ms, r.P99Ms, r.WallMs, r.Verified, r.Error)
	}
	tw.Flush()
}
