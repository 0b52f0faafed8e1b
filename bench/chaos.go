package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// The chaos driver (go run ./bench -w chaos -kills K -seed S): a mixed
// workload runs in a child process (this binary, re-executed with
// childEnv=chaos) that is killed with SIGKILL K times at seeded moments and
// restarted on the same directory each time; then a last child runs it to
// the end and exits cleanly, and this process reopens the directory and
// verifies every instance's output, every entity's state, and that the
// transfers between accounts made and lost no money.
//
// The plan (which instances, their inputs, the transfers) and the kill
// moments come from the seed; how far each child gets before its kill
// depends on the machine. Every activity execution appends one line to an
// O_APPEND log, which survives the kills, so executions beyond one per
// scheduling can be counted.
//
// With -cluster N the same plan runs on N member processes of one cluster,
// one of them killed at a time (chaos_cluster.go).

// ChaosConfig configures a chaos run.
type ChaosConfig struct {
	Kills int    // SIGKILLs before the last, clean run
	Seed  uint64 // the plan and the kill moments
	Units int    // workload units (see chaosPlan); 0: 20 per kill, at least 40
	// MinKill and MaxKill bound how long after its start a child is
	// killed (0: 30ms and 1.2s).
	MinKill, MaxKill time.Duration
	Dir              string // parent of the run's directory (default: temp)
	Partitions       int
	NoSync           bool
	Timeout          time.Duration // the whole run (0: 10 minutes)
	Out              io.Writer     // progress and the report (nil: discard)
	// Nodes, when 3 or more, runs the cluster mode (-cluster N): Nodes
	// member processes of one cluster on one hub directory, one of them
	// killed at each kill moment and restarted (see chaos_cluster.go).
	// 0: the single-process mode.
	Nodes int
	// MinGap and MaxGap bound the time from one kill to the next in the
	// cluster mode (0: 5s and 8s); a kill also waits until the member
	// killed before it is back and ready, so that two are never down.
	MinGap, MaxGap time.Duration
	// MinDown and MaxDown bound how long a killed member stays down before
	// it is restarted (0: 200ms and 4.5s; DropAfter is 3s, so some kills
	// are failovers to the survivors and some are quick rejoins).
	MinDown, MaxDown time.Duration
}

// ChaosResult is what a chaos run found.
type ChaosResult struct {
	Seed                 uint64
	Kills                int // SIGKILLs survived
	Instances            int // instances planned, all verified
	Accounts, Counters   int // entities verified
	Money                int // the accounts' total, as funded
	Moved                int // transfers that moved money
	Schedulings          int // activity schedulings
	Executions           int // activity executions in every process
	ReExecutions         int // executions beyond one per scheduling
	WorstFirstProgress   time.Duration
	FirstProgressSamples int // restarts that had work left and made progress
	KilledBeforeProgress int // children killed before their first progress

	// The cluster mode's figures (Nodes > 0).
	Nodes int
	// KillToProgress: from a SIGKILL to the first activity execution, on
	// any member, in a partition the killed member owned at the kill
	// (worst, and the kills that had such work left).
	WorstKillToProgress   time.Duration
	KillToProgressSamples int
	// KillToClaimed: from a SIGKILL to every partition the killed member
	// owned claimed again (their ownership records' epochs moved on).
	WorstKillToClaimed time.Duration
	KillToClaimedSum   time.Duration
	ClaimedSamples     int
	// FailedOver counts the partitions claimed by a survivor after a kill,
	// Reclaimed those the restarted member claimed back first.
	FailedOver, Reclaimed int
	// RestartToReady: from a member's restart to its Ready (it has joined
	// and every partition answers).
	WorstRestartToReady time.Duration
	Expulsions          int // members the others dropped, restarted
	// Stalls: times the members made no progress after the last kill and
	// every member was restarted in turn (see unstall); Stalled: what the
	// members waited for then.
	Stalls  int
	Stalled []string
	// LostWaits: waits for completion still open chaosLostWait after
	// their instance had completed (Status said so; the member then
	// stopped waiting), and the first few such instances.
	LostWaits     int
	LostWaitedFor []string
}

const (
	chaosAccounts = 10
	chaosFunding  = 1000
	chaosCounters = 5
	chaosFan      = 10
	chaosLoops    = 5
)

const (
	chaosChildDirEnv        = "DURABLE_CHAOS_DIR"
	chaosChildLogEnv        = "DURABLE_CHAOS_LOG"
	chaosChildSeedEnv       = "DURABLE_CHAOS_SEED"
	chaosChildUnitsEnv      = "DURABLE_CHAOS_UNITS"
	chaosChildPartitionsEnv = "DURABLE_CHAOS_PARTITIONS"
	chaosChildNoSyncEnv     = "DURABLE_CHAOS_NOSYNC"
)

// chaosInstance is one planned instance and the output it must end with
// (nil: a Transfer, whose output depends on the order of transfers).
type chaosInstance struct {
	id, name string
	input    any
	want     any
	approval bool // waits for the event "go"
}

type transferInput struct {
	From, To, Amount int
}

// chaosPlan is the workload: chaosAccounts Fund instances (each signals
// its account a deposit), then per unit a Chain (5 activities in turn), a
// Fan (chaosFan activities at once), a Sleepy (a durable timer, then an
// activity), an Approval (waits for an external event), two Transfers
// between random accounts (both locked, a balance read, a withdrawal and a
// deposit), a Tick (an entity signal to a counter), and every 3rd unit a
// Retry (an activity that fails twice, retried with backoff), every 4th a
// Parent (a Chain and a Fan as sub-orchestrations), every 5th a Looper
// (continue-as-new chaosLoops times).
func chaosPlan(seed uint64, units int) []chaosInstance {
	rng := rand.New(rand.NewPCG(seed, 0x6368616f73))
	var plan []chaosInstance
	for a := range chaosAccounts {
		plan = append(plan, chaosInstance{id: fmt.Sprintf("fund-%d", a), name: "Fund", input: a, want: nil})
	}
	fanSum := 0
	for i := 1; i <= chaosFan; i++ {
		fanSum += i * i
	}
	for u := range units {
		id := func(kind string) string { return fmt.Sprintf("%s-%d", kind, u) }
		plan = append(plan,
			chaosInstance{id: id("chain"), name: "Chain", input: u, want: u + 5},
			chaosInstance{id: id("fan"), name: "Fan", input: chaosFan, want: fanSum},
			chaosInstance{id: id("sleepy"), name: "Sleepy", input: 20 + rng.IntN(200), want: "slept"},
			chaosInstance{id: id("approval"), name: "Approval", want: "approved " + id("approval"), approval: true},
			chaosInstance{id: id("tick"), name: "Tick", input: u % chaosCounters, want: nil},
		)
		for k := range 2 {
			from := rng.IntN(chaosAccounts)
			to := (from + 1 + rng.IntN(chaosAccounts-1)) % chaosAccounts
			plan = append(plan, chaosInstance{id: fmt.Sprintf("transfer-%d-%d", u, k), name: "Transfer",
				input: transferInput{From: from, To: to, Amount: 1 + rng.IntN(300)}})
		}
		if u%3 == 0 {
			plan = append(plan, chaosInstance{id: id("retry"), name: "Retry", input: u, want: 10 * u})
		}
		if u%4 == 0 {
			plan = append(plan, chaosInstance{id: id("parent"), name: "Parent", input: u, want: u + 5 + fanSum})
		}
		if u%5 == 0 {
			plan = append(plan, chaosInstance{id: id("looper"), name: "Looper", input: 1, want: chaosLoops})
		}
	}
	return plan
}

// chaosSchedulings is how many activity schedulings the plan makes.
func chaosSchedulings(plan []chaosInstance) int {
	per := map[string]int{"Chain": 5, "Fan": chaosFan, "Sleepy": 1, "Retry": 3, "Parent": 5 + chaosFan, "Looper": chaosLoops}
	n := 0
	for _, in := range plan {
		n += per[in.name]
	}
	return n
}

func account(a int) durable.EntityID { return durable.EntityID{Name: "Account", Key: strconv.Itoa(a)} }
func counter(k int) durable.EntityID { return durable.EntityID{Name: "Counter", Key: strconv.Itoa(k)} }

// numberEntity is Account's and Counter's code: a number with "add" and
// "get".
func numberEntity(ctx *orchestration.EntityContext) error {
	var v int
	if err := ctx.GetState(&v); err != nil {
		return err
	}
	switch ctx.Operation() {
	case "add":
		var n int
		if err := ctx.Input(&n); err != nil {
			return err
		}
		return ctx.SetState(v + n)
	case "get":
		return ctx.Return(v)
	}
	return fmt.Errorf("no operation %q", ctx.Operation())
}

// registerChaos registers the plan's functions. progress is called at the
// first activity execution of this process; every execution is appended to
// log (nil: not logged).
func registerChaos(log *execLog, progress func()) func(rt *durable.Runtime) error {
	return registerChaosObserved(log, progress, nil)
}

// registerChaosObserved is registerChaos that also tells onExec (if not
// nil) the instance of every activity execution.
func registerChaosObserved(log *execLog, progress func(), onExec func(instanceID string)) func(rt *durable.Runtime) error {
	activity := func(name string, fn func(ctx context.Context, n int) (int, error)) func(ctx context.Context, n int) (int, error) {
		return func(ctx context.Context, n int) (int, error) {
			info, _ := orchestration.ActivityInfoFrom(ctx)
			if progress != nil {
				progress()
			}
			if onExec != nil {
				onExec(info.InstanceID)
			}
			if log != nil {
				attempt := 0
				if name == "Flaky" {
					attempt = info.Attempt // the policy's attempt: a scheduling each
				}
				key := fmt.Sprintf("%s/%s/%d/%d/%d", info.InstanceID, name, info.TaskID, n, attempt)
				if err := log.record(key, "x"); err != nil {
					return 0, err
				}
			}
			return fn(ctx, n)
		}
	}
	chain := func(ctx *orchestration.Context) (any, error) {
		var n int
		if err := ctx.Input(&n); err != nil {
			return nil, err
		}
		for range 5 {
			var err error
			if n, err = orchestration.Await[int](ctx.CallActivity("Inc", n)); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
	fan := func(ctx *orchestration.Context) (any, error) {
		var n int
		if err := ctx.Input(&n); err != nil {
			return nil, err
		}
		tasks := make([]orchestration.Task, n)
		for i := range tasks {
			tasks[i] = ctx.CallActivity("Square", i+1)
		}
		sum := 0
		for _, t := range tasks {
			v, err := orchestration.Await[int](t)
			if err != nil {
				return nil, err
			}
			sum += v
		}
		return sum, nil
	}
	return func(rt *durable.Runtime) error {
		return errors.Join(
			rt.RegisterActivity("Inc", activity("Inc", func(_ context.Context, n int) (int, error) { return n + 1, nil })),
			rt.RegisterActivity("Square", activity("Square", func(_ context.Context, n int) (int, error) { return n * n, nil })),
			rt.RegisterActivity("Nap", activity("Nap", func(_ context.Context, n int) (int, error) { return n, nil })),
			rt.RegisterActivity("Flaky", activity("Flaky", func(ctx context.Context, n int) (int, error) {
				if info, _ := orchestration.ActivityInfoFrom(ctx); info.Attempt < 3 {
					return 0, fmt.Errorf("attempt %d fails", info.Attempt)
				}
				return 10 * n, nil
			})),
			rt.RegisterActivity("Step", activity("Step", func(_ context.Context, n int) (int, error) { return n, nil })),
			rt.RegisterOrchestrator("Chain", chain),
			rt.RegisterOrchestrator("Fan", fan),
			rt.RegisterOrchestrator("Sleepy", func(ctx *orchestration.Context) (any, error) {
				var ms int
				if err := ctx.Input(&ms); err != nil {
					return nil, err
				}
				if err := ctx.CreateTimer(time.Duration(ms) * time.Millisecond).Await(nil); err != nil {
					return nil, err
				}
				if _, err := orchestration.Await[int](ctx.CallActivity("Nap", ms)); err != nil {
					return nil, err
				}
				return "slept", nil
			}),
			rt.RegisterOrchestrator("Approval", func(ctx *orchestration.Context) (any, error) {
				return orchestration.Await[string](ctx.WaitForExternalEvent("go"))
			}),
			rt.RegisterOrchestrator("Retry", func(ctx *orchestration.Context) (any, error) {
				var n int
				if err := ctx.Input(&n); err != nil {
					return nil, err
				}
				policy := orchestration.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: 20 * time.Millisecond, BackoffCoefficient: 2}
				return orchestration.Await[int](ctx.CallActivity("Flaky", n, orchestration.WithRetry(policy)))
			}),
			rt.RegisterOrchestrator("Parent", func(ctx *orchestration.Context) (any, error) {
				var n int
				if err := ctx.Input(&n); err != nil {
					return nil, err
				}
				c, f := ctx.CallSubOrchestrator("Chain", n), ctx.CallSubOrchestrator("Fan", chaosFan)
				a, err := orchestration.Await[int](c)
				if err != nil {
					return nil, err
				}
				b, err := orchestration.Await[int](f)
				if err != nil {
					return nil, err
				}
				return a + b, nil
			}),
			rt.RegisterOrchestrator("Looper", func(ctx *orchestration.Context) (any, error) {
				var round int
				if err := ctx.Input(&round); err != nil {
					return nil, err
				}
				if _, err := orchestration.Await[int](ctx.CallActivity("Step", round)); err != nil {
					return nil, err
				}
				if round < chaosLoops {
					return nil, ctx.ContinueAsNew(round + 1)
				}
				return round, nil
			}),
			rt.RegisterOrchestrator("Fund", func(ctx *orchestration.Context) (any, error) {
				var a int
				if err := ctx.Input(&a); err != nil {
					return nil, err
				}
				return nil, ctx.SignalEntity(account(a), "add", chaosFunding)
			}),
			rt.RegisterOrchestrator("Tick", func(ctx *orchestration.Context) (any, error) {
				var k int
				if err := ctx.Input(&k); err != nil {
					return nil, err
				}
				return nil, ctx.SignalEntity(counter(k), "add", 1)
			}),
			rt.RegisterOrchestrator("Transfer", func(ctx *orchestration.Context) (any, error) {
				var in transferInput
				if err := ctx.Input(&in); err != nil {
					return nil, err
				}
				from, to := account(in.From), account(in.To)
				lock, err := ctx.LockEntities(from, to)
				if err != nil {
					return nil, err
				}
				defer lock.Release()
				bal, err := orchestration.Await[int](ctx.CallEntity(from, "get", nil))
				if err != nil {
					return nil, err
				}
				if bal < in.Amount {
					return "insufficient", nil
				}
				if err := ctx.CallEntity(from, "add", -in.Amount).Await(nil); err != nil {
					return nil, err
				}
				if err := ctx.CallEntity(to, "add", in.Amount).Await(nil); err != nil {
					return nil, err
				}
				return "moved", nil
			}),
			rt.RegisterEntity("Account", numberEntity),
			rt.RegisterEntity("Counter", numberEntity),
		)
	}
}

// chaosChildMain is the process that gets killed: it starts the planned
// instances not started yet (a few hundred a second, so the work spans
// the kills), raises "go" to the approvals not finished, waits for every
// instance, and prints "progress" at its first real work and "all-done"
// at the end.
func chaosChildMain() int {
	fail := func(err error) int { fmt.Println("error " + err.Error()); return 1 }
	seed, _ := strconv.ParseUint(os.Getenv(chaosChildSeedEnv), 10, 64)
	units, _ := strconv.Atoi(os.Getenv(chaosChildUnitsEnv))
	partitions, _ := strconv.Atoi(os.Getenv(chaosChildPartitionsEnv))
	log, err := openExecLog(os.Getenv(chaosChildLogEnv), "child")
	if err != nil {
		return fail(err)
	}
	var mu sync.Mutex
	say := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println(s) // unbuffered: the parent sees it at once
	}
	var progressed atomic.Bool
	progress := func() {
		if progressed.CompareAndSwap(false, true) {
			say("progress")
		}
	}
	cfg := Config{Partitions: partitions, NoSync: os.Getenv(chaosChildNoSyncEnv) == "1", Logger: warnLogger()}
	rt, err := startRuntime(cfg, os.Getenv(chaosChildDirEnv), registerChaos(log, progress))
	if err != nil {
		return fail(err)
	}
	defer rt.Close()
	if err := driveChaosPlan(context.Background(), rt.Client(), chaosPlan(seed, units), time.Second/400, nil, false, func(string) { progress() }, nil); err != nil {
		return fail(err)
	}
	say("all-done")
	return 0
}

// driveChaosPlan starts the instances of plan not started yet, one every
// pace, raises "go" to its approvals, and waits for every one to complete;
// progress is called with the id of each completion. retry, if not nil, wraps every
// call (the cluster mode retries while the cluster answers Unavailable);
// with existsOK a start told ErrInstanceExists counts as done (a start whose
// answer was lost to a kill of the member that relayed it); wait, if not
// nil, replaces c.WaitForCompletion. On an error it returns at once: the
// caller exits.
func driveChaosPlan(ctx context.Context, c *durable.Client, plan []chaosInstance, pace time.Duration, retry func(func() error) error, existsOK bool, progress func(id string), wait func(ctx context.Context, id string) (*durable.Status, error)) error {
	if wait == nil {
		wait = c.WaitForCompletion
	}
	if retry == nil {
		retry = func(f func() error) error { return f() }
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for _, in := range plan {
		var st *durable.Status
		err := retry(func() (err error) { st, err = c.Status(ctx, in.id); return err })
		switch {
		case errors.Is(err, durable.ErrInstanceNotFound):
			<-tick.C
			err := retry(func() error {
				_, err := c.Start(ctx, in.name, in.input, durable.WithInstanceID(in.id))
				return err
			})
			if err != nil && !(existsOK && errors.Is(err, durable.ErrInstanceExists)) {
				return fmt.Errorf("start %s: %w", in.id, err)
			}
		case err != nil:
			return fmt.Errorf("status of %s: %w", in.id, err)
		case st.RuntimeStatus.IsTerminal():
			continue
		}
		if in.approval {
			err := retry(func() error { return c.RaiseEvent(ctx, in.id, "go", "approved "+in.id) })
			if err != nil && !errors.Is(err, durable.ErrInstanceCompleted) {
				return fmt.Errorf("raise to %s: %w", in.id, err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st *durable.Status
			err := retry(func() (err error) { st, err = wait(ctx, in.id); return err })
			if err != nil {
				report(fmt.Errorf("wait for %s: %w", in.id, err))
				return
			}
			if st.RuntimeStatus != durable.StatusCompleted {
				report(fmt.Errorf("%s ended %s: %+v", in.id, st.RuntimeStatus, st.Failure))
				return
			}
			if progress != nil {
				progress(in.id)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	return nil
}

// RunChaos runs the chaos driver and verifies the result.
func RunChaos(cfg ChaosConfig) (*ChaosResult, error) {
	if cfg.Kills < 0 {
		return nil, errors.New("chaos: -kills must not be negative")
	}
	if cfg.Units == 0 {
		cfg.Units = max(40, 20*cfg.Kills)
	}
	if cfg.MinKill == 0 {
		cfg.MinKill = 30 * time.Millisecond
	}
	if cfg.MaxKill == 0 {
		cfg.MaxKill = 1200 * time.Millisecond
	}
	if cfg.MaxKill < cfg.MinKill {
		return nil, errors.New("chaos: MaxKill < MinKill")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Nodes != 0 {
		return runChaosCluster(cfg)
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	base, err := os.MkdirTemp(cfg.Dir, "chaos-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(base)
	hubDir, logPath := filepath.Join(base, "hub"), filepath.Join(base, "activity-executions.log")
	plan := chaosPlan(cfg.Seed, cfg.Units)
	res := &ChaosResult{Seed: cfg.Seed, Instances: len(plan), Accounts: chaosAccounts, Counters: chaosCounters}
	fmt.Fprintf(out, "chaos: seed %d, %d kills, %d units (%d instances), partitions %d, %s\n",
		cfg.Seed, cfg.Kills, cfg.Units, len(plan), cfg.Partitions, map[bool]string{true: "nosync", false: "sync"}[cfg.NoSync])

	killRng := rand.New(rand.NewPCG(cfg.Seed, 0x6b696c6c))
	for run := 0; res.Kills < cfg.Kills; run++ {
		after := cfg.MinKill + time.Duration(killRng.Int64N(int64(cfg.MaxKill-cfg.MinKill)+1))
		o, err := runChaosChild(ctx, cfg, hubDir, logPath, after)
		if err != nil {
			return res, fmt.Errorf("run %d: %w", run, err)
		}
		res.noteProgress(o)
		if !o.killed {
			fmt.Fprintf(out, "  run %d: the workload finished before its kill at %v; use a larger -n for more kills\n", run, after.Round(time.Millisecond))
			break
		}
		res.Kills++
		if o.firstProgress == 0 {
			res.KilledBeforeProgress++
		}
		fmt.Fprintf(out, "  run %d: killed after %v (first progress %v)\n", run, after.Round(time.Millisecond), o.firstProgress.Round(time.Millisecond))
	}
	// The last run goes to the end and exits cleanly.
	o, err := runChaosChild(ctx, cfg, hubDir, logPath, 0)
	if err != nil {
		return res, fmt.Errorf("last run: %w", err)
	}
	res.noteProgress(o)
	if !o.allDone {
		return res, errors.New("the last run ended without finishing the workload")
	}

	if err := verifyChaos(ctx, cfg, hubDir, plan, res); err != nil {
		return res, err
	}
	return res, res.tallyExecutions(logPath, plan)
}

// tallyExecutions counts the activity executions of the run's log: every
// scheduling of the plan must be there, and what runs beyond one per
// scheduling are re-executions.
func (r *ChaosResult) tallyExecutions(logPath string, plan []chaosInstance) error {
	counts, err := countExecutions(logPath)
	if err != nil {
		return fmt.Errorf("count executions: %w", err)
	}
	r.Schedulings = len(counts)
	for _, n := range counts {
		r.Executions += n
	}
	r.ReExecutions = r.Executions - r.Schedulings
	if want := chaosSchedulings(plan); r.Schedulings != want {
		return fmt.Errorf("the execution log holds %d activity schedulings, the plan makes %d", r.Schedulings, want)
	}
	return nil
}

func (r *ChaosResult) noteProgress(o childOutcome) {
	if o.firstProgress > 0 {
		r.FirstProgressSamples++
		r.WorstFirstProgress = max(r.WorstFirstProgress, o.firstProgress)
	}
}

// childOutcome is what one child run did.
type childOutcome struct {
	killed, allDone bool
	firstProgress   time.Duration // from the process's start; 0: none
}

// runChaosChild runs one child; after > 0 kills it with SIGKILL that long
// after its start, 0 lets it finish.
func runChaosChild(ctx context.Context, cfg ChaosConfig, hubDir, logPath string, after time.Duration) (childOutcome, error) {
	var o childOutcome
	exe, err := os.Executable()
	if err != nil {
		return o, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"=chaos",
		chaosChildDirEnv+"="+hubDir, chaosChildLogEnv+"="+logPath,
		chaosChildSeedEnv+"="+strconv.FormatUint(cfg.Seed, 10), chaosChildUnitsEnv+"="+strconv.Itoa(cfg.Units),
		chaosChildPartitionsEnv+"="+strconv.Itoa(cfg.Partitions), chaosChildNoSyncEnv+"="+map[bool]string{true: "1", false: "0"}[cfg.NoSync])
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return o, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return o, err
	}
	killDone := make(chan bool, 1) // whether the kill was sent
	var killTimer *time.Timer
	if after > 0 {
		killTimer = time.AfterFunc(after, func() { killDone <- cmd.Process.Signal(syscall.SIGKILL) == nil })
	}
	var childErr string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "progress" && o.firstProgress == 0:
			o.firstProgress = time.Since(start)
		case line == "all-done":
			o.allDone = true
		case strings.HasPrefix(line, "error ") && childErr == "":
			childErr = strings.TrimPrefix(line, "error ")
		}
	}
	waitErr := cmd.Wait()
	if killTimer != nil && !killTimer.Stop() {
		o.killed = <-killDone // it fired: the kill was sent, or the child had exited
	}
	switch {
	case childErr != "" && !o.killed:
		return o, errors.New(childErr)
	case childErr != "":
		// A child killed mid-call may print an error first; only a
		// wrong result matters, and verification finds it.
	case !o.killed && waitErr != nil:
		return o, fmt.Errorf("child: %w", waitErr)
	}
	return o, ctx.Err()
}

// verifyChaos reopens the directory in this process and checks every
// instance, entity and the money.
func verifyChaos(ctx context.Context, cfg ChaosConfig, hubDir string, plan []chaosInstance, res *ChaosResult) error {
	rt, err := startRuntime(Config{Partitions: cfg.Partitions, NoSync: cfg.NoSync, Logger: warnLogger()}, hubDir, registerChaos(nil, nil))
	if err != nil {
		return fmt.Errorf("reopen to verify: %w", err)
	}
	defer rt.Close()
	c := rt.Client()
	balance := make([]int, chaosAccounts)
	ticks := make([]int, chaosCounters)
	for a := range balance {
		balance[a] = chaosFunding
	}
	for _, in := range plan {
		st, err := c.Status(ctx, in.id)
		if err != nil {
			return fmt.Errorf("status of %s: %w", in.id, err)
		}
		if st.RuntimeStatus != durable.StatusCompleted {
			return fmt.Errorf("%s is %s: %+v", in.id, st.RuntimeStatus, st.Failure)
		}
		switch in.name {
		case "Transfer":
			var got string
			if err := json.Unmarshal(st.Output, &got); err != nil || (got != "moved" && got != "insufficient") {
				return fmt.Errorf("%s: output %s", in.id, st.Output)
			}
			if got == "moved" {
				t := in.input.(transferInput)
				balance[t.From] -= t.Amount
				balance[t.To] += t.Amount
				res.Moved++
			}
			continue
		case "Tick":
			ticks[in.input.(int)]++
		}
		want, _ := json.Marshal(in.want)
		if got := string(st.Output); got != string(want) && !(in.want == nil && got == "") {
			return fmt.Errorf("%s: output %s, want %s", in.id, st.Output, want)
		}
	}
	// Signals are delivered after their sender completes: wait for them.
	check := func() error {
		total := 0
		for a, want := range balance {
			got, err := readNumber(ctx, c, account(a))
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("account %d holds %d, the transfers' outputs say %d", a, got, want)
			}
			total += got
		}
		if total != chaosAccounts*chaosFunding {
			return fmt.Errorf("the accounts hold %d in all, %d were funded", total, chaosAccounts*chaosFunding)
		}
		res.Money = total
		for k, want := range ticks {
			got, err := readNumber(ctx, c, counter(k))
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("counter %d is %d, want %d", k, got, want)
			}
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readNumber(ctx context.Context, c *durable.Client, id durable.EntityID) (int, error) {
	raw, err := c.ReadEntityState(ctx, id)
	if errors.Is(err, durable.ErrEntityNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", id, err)
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("state of %s: %s: %w", id, raw, err)
	}
	return v, nil
}

// PrintChaos writes r as the report.
func PrintChaos(w io.Writer, cfg ChaosConfig, r *ChaosResult) {
	fmt.Fprintf(w, "kills survived:        %d\n", r.Kills)
	fmt.Fprintf(w, "instances:             %d, every one completed with the right output\n", r.Instances)
	fmt.Fprintf(w, "entities:              %d accounts and %d counters right; money conserved: %d (%d transfers moved money)\n", r.Accounts, r.Counters, r.Money, r.Moved)
	fmt.Fprintf(w, "activity executions:   %d for %d schedulings: %d re-executions beyond one per scheduling\n", r.Executions, r.Schedulings, r.ReExecutions)
	mode := ""
	if cfg.NoSync {
		mode = " -mode nosync"
	}
	if r.Nodes > 0 {
		printChaosCluster(w, r)
		mode += fmt.Sprintf(" -cluster %d", r.Nodes)
	} else {
		fmt.Fprintf(w, "worst restart to first progress: %v (from the process's start; over %d runs that made progress, %d more killed before theirs)\n",
			r.WorstFirstProgress.Round(time.Millisecond), r.FirstProgressSamples, r.KilledBeforeProgress)
	}
	fmt.Fprintf(w, "seed %d; rerun: go run ./bench -w chaos -kills %d -seed %d -n %d%s\n", r.Seed, cfg.Kills, r.Seed, cfg.Units, mode)
}

// chaosArgs reports whether args ask for the chaos driver (-w chaos).
func chaosArgs(args []string) bool {
	for i, a := range args {
		switch {
		case (a == "-w" || a == "--w") && i+1 < len(args):
			return strings.EqualFold(args[i+1], "chaos")
		case strings.HasPrefix(a, "-w=") || strings.HasPrefix(a, "--w="):
			return strings.EqualFold(a[strings.Index(a, "=")+1:], "chaos")
		}
	}
	return false
}

// chaosMain is `bench -w chaos`: it parses the chaos flags, runs the
// driver, prints the report and exits 1 if anything was wrong.
func chaosMain(args []string) int {
	fs := flag.NewFlagSet("bench -w chaos", flag.ContinueOnError)
	fs.String("w", "chaos", "chaos: the chaos driver")
	kills := fs.Int("kills", 50, "SIGKILLs of the child before its last, clean run")
	seed := fs.Uint64("seed", 0, "seed of the plan and the kill moments (0: a new one, printed)")
	units := fs.Int("n", 0, "workload units (0: 20 per kill, at least 40)")
	partitions := fs.Int("partitions", 0, "partitions of the hub (0: durable's default)")
	mode := fs.String("mode", "sync", "durability: sync or nosync")
	dir := fs.String("dir", "", "parent directory of the run's data (default: a temporary directory, removed after)")
	minKill := fs.Duration("min-kill", 30*time.Millisecond, "earliest kill after a child's start")
	maxKill := fs.Duration("max-kill", 1200*time.Millisecond, "latest kill after a child's start")
	nodes := fs.Int("cluster", 0, "run the workload on a cluster of this many member processes (at least 3) and kill one at a time (0: one process)")
	minGap := fs.Duration("min-gap", 5*time.Second, "-cluster: shortest time from one kill to the next")
	maxGap := fs.Duration("max-gap", 8*time.Second, "-cluster: longest time from one kill to the next")
	minDown := fs.Duration("min-down", 200*time.Millisecond, "-cluster: shortest time a killed member stays down")
	maxDown := fs.Duration("max-down", 4500*time.Millisecond, "-cluster: longest time a killed member stays down")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || (*mode != "sync" && *mode != "nosync") || *kills < 0 || *units < 0 || *partitions < 0 || *nodes < 0 || (*nodes > 0 && *nodes < 3) {
		fmt.Fprintln(os.Stderr, "bench -w chaos: bad arguments (see -h)")
		return 2
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	cfg := ChaosConfig{Kills: *kills, Seed: *seed, Units: *units, Partitions: *partitions, NoSync: *mode == "nosync",
		Dir: *dir, MinKill: *minKill, MaxKill: *maxKill, Timeout: *timeout, Out: os.Stdout,
		Nodes: *nodes, MinGap: *minGap, MaxGap: *maxGap, MinDown: *minDown, MaxDown: *maxDown}
	if cfg.Units == 0 {
		cfg.Units = max(40, 20*cfg.Kills)
	}
	r, err := RunChaos(cfg)
	if err != nil {
		fmt.Fprintf(os.Stdout, "FAILED (seed %d, after %d kills): %v\n", *seed, r.Kills, err)
		return 1
	}
	PrintChaos(os.Stdout, cfg, r)
	return 0
}
