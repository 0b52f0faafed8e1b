package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func helloCities(ctx *orchestration.Context) (any, error) {
	var out []string
	for _, city := range []string{"Tokyo", "Seattle", "London"} {
		var s string
		if err := ctx.CallActivity("Hello", city).Await(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func hello(_ context.Context, city string) (string, error) { return "Hello " + city + "!", nil }

const helloOutput = `["Hello Tokyo!","Hello Seattle!","Hello London!"]`

func open(t *testing.T, opts durable.Options, register func(rt *durable.Runtime)) *durable.Runtime {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	rt, err := durable.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	register(rt)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

func registerHello(rt *durable.Runtime) {
	must(rt.RegisterOrchestrator("HelloCities", helloCities))
	must(rt.RegisterActivity("Hello", hello))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHelloCitiesCompletesInMemoryAndOnDisk(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  string
	}{{"in memory", ""}, {"on disk", t.TempDir()}} {
		t.Run(tc.name, func(t *testing.T) {
			rt := open(t, durable.Options{Dir: tc.dir}, registerHello)
			ctx := waitCtx(t)
			c := rt.Client()
			id, err := c.Start(ctx, "HelloCities", nil)
			if err != nil {
				t.Fatal(err)
			}
			st, err := c.WaitForCompletion(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != helloOutput {
				t.Fatalf("status %s output %s failure %v", st.RuntimeStatus, st.Output, st.Failure)
			}
			if st.Name != "HelloCities" || st.InstanceID != id || st.CreatedAt.IsZero() || st.LastUpdatedAt.Before(st.CreatedAt) {
				t.Fatalf("status fields: %+v", st)
			}
			var out []string
			if err := st.DecodeOutput(&out); err != nil || len(out) != 3 {
				t.Fatalf("decode output: %v %v", out, err)
			}
			events, err := c.History(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var scheduled int
			for _, ev := range events {
				if ev.Type == history.TaskScheduled {
					scheduled++
				}
			}
			if scheduled != 3 || events[len(events)-1].Type != history.ExecutionCompleted {
				t.Fatalf("history: %d scheduled, last %s", scheduled, events[len(events)-1].Type)
			}
		})
	}
}

func TestManyConcurrentInstancesAllComplete(t *testing.T) {
	rt := open(t, durable.Options{Dir: t.TempDir()}, registerHello)
	ctx := waitCtx(t)
	c := rt.Client()
	const n = 300
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := c.Start(ctx, "HelloCities", nil)
			if err != nil {
				errs <- err
				return
			}
			ids[i] = id
			st, err := c.WaitForCompletion(ctx, id)
			if err != nil {
				errs <- err
				return
			}
			if string(st.Output) != helloOutput {
				errs <- fmt.Errorf("%s: %s %s", id, st.RuntimeStatus, st.Output)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestInputIsPassedToTheOrchestratorAndOutputReturned(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Sum", func(ctx *orchestration.Context) (any, error) {
			var in []int
			if err := ctx.Input(&in); err != nil {
				return nil, err
			}
			total := 0
			for _, v := range in {
				d, err := orchestration.Await[int](ctx.CallActivity("Double", v))
				if err != nil {
					return nil, err
				}
				total += d
			}
			return total, nil
		}))
		must(rt.RegisterActivity("Double", func(_ context.Context, v int) (int, error) { return 2 * v, nil }))
	})
	ctx := waitCtx(t)
	id, err := rt.Client().Start(ctx, "Sum", []int{1, 2, 3}, durable.WithInstanceID("sum-1"))
	if err != nil || id != "sum-1" {
		t.Fatalf("start: %q %v", id, err)
	}
	st, err := rt.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(st.Output) != "12" || string(st.Input) != "[1,2,3]" {
		t.Fatalf("input %s output %s", st.Input, st.Output)
	}
}

type insufficientFunds struct{ need int }

func (e *insufficientFunds) Error() string     { return fmt.Sprintf("need %d more", e.need) }
func (e *insufficientFunds) ErrorType() string { return "InsufficientFunds" }

func TestActivityFailureIsATypedErrorTheOrchestratorCanHandle(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Pay", func(ctx *orchestration.Context) (any, error) {
			err := ctx.CallActivity("Charge", 10).Await(nil)
			var tf *orchestration.TaskFailedError
			if errors.As(err, &tf) && tf.Failure.ErrorType == "InsufficientFunds" {
				return "declined: " + tf.Failure.Message, nil
			}
			return "charged", err
		}))
		must(rt.RegisterActivity("Charge", func(_ context.Context, amount int) error { return &insufficientFunds{need: amount} }))
	})
	ctx := waitCtx(t)
	id, _ := rt.Client().Start(ctx, "Pay", nil)
	st, err := rt.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != `"declined: need 10 more"` {
		t.Fatalf("%s %s %v", st.RuntimeStatus, st.Output, st.Failure)
	}
}

func TestUnhandledActivityFailureFailsTheInstance(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Fail", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.CallActivity("Boom", nil).Await(nil)
		}))
		must(rt.RegisterActivity("Boom", func(context.Context) error { return errors.New("disk on fire") }))
	})
	ctx := waitCtx(t)
	id, _ := rt.Client().Start(ctx, "Fail", nil)
	st, err := rt.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.RuntimeStatus != durable.StatusFailed || st.Failure == nil || !strings.Contains(st.Failure.Message, "disk on fire") {
		t.Fatalf("%s %+v", st.RuntimeStatus, st.Failure)
	}
}

func TestPanicsFailTheInstanceNotTheNode(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		registerHello(rt)
		must(rt.RegisterOrchestrator("PanicInOrchestrator", func(ctx *orchestration.Context) (any, error) {
			panic("orchestrator bug")
		}))
		must(rt.RegisterOrchestrator("PanicInActivity", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.CallActivity("Panics", nil).Await(nil)
		}))
		must(rt.RegisterActivity("Panics", func(context.Context) error { panic("activity bug") }))
	})
	ctx := waitCtx(t)
	c := rt.Client()
	for name, want := range map[string]string{"PanicInOrchestrator": "orchestrator bug", "PanicInActivity": "activity bug"} {
		id, err := c.Start(ctx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.WaitForCompletion(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.RuntimeStatus != durable.StatusFailed || !strings.Contains(st.Failure.Message, want) {
			t.Fatalf("%s: %s %+v", name, st.RuntimeStatus, st.Failure)
		}
		if name == "PanicInOrchestrator" && (st.Failure.ErrorType != "panic" || !strings.Contains(st.Failure.StackTrace, "durable_test.go")) {
			t.Fatalf("%s: failure %+v", name, st.Failure)
		}
	}
	// The node goes on.
	id, _ := c.Start(ctx, "HelloCities", nil)
	if st, err := c.WaitForCompletion(ctx, id); err != nil || string(st.Output) != helloOutput {
		t.Fatalf("after panics: %v %v", st, err)
	}
}

func TestBadInputGetsClearErrorsAndChangesNothing(t *testing.T) {
	rt := open(t, durable.Options{MaxPayloadBytes: 100}, registerHello)
	ctx := waitCtx(t)
	c := rt.Client()
	cases := []struct {
		name  string
		orch  string
		input any
		opts  []durable.StartOption
		want  error
	}{
		{"unknown orchestrator", "Nope", nil, nil, durable.ErrOrchestratorNotRegistered},
		{"id with slash", "HelloCities", nil, []durable.StartOption{durable.WithInstanceID("a/b")}, durable.ErrInvalidInstanceID},
		{"id starting with @", "HelloCities", nil, []durable.StartOption{durable.WithInstanceID("@x")}, durable.ErrInvalidInstanceID},
		{"id with control char", "HelloCities", nil, []durable.StartOption{durable.WithInstanceID("a\x00b")}, durable.ErrInvalidInstanceID},
		{"id too long", "HelloCities", nil, []durable.StartOption{durable.WithInstanceID(strings.Repeat("x", 257))}, durable.ErrInvalidInstanceID},
		{"invalid raw JSON", "HelloCities", json.RawMessage(`{"a":`), nil, durable.ErrInvalidInput},
		{"unencodable input", "HelloCities", func() {}, nil, durable.ErrInvalidInput},
		{"payload too large", "HelloCities", strings.Repeat("x", 200), nil, durable.ErrPayloadTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append(tc.opts, durable.WithInstanceID("bad-input-probe"))
			if len(tc.opts) > 0 {
				opts = tc.opts
			}
			_, err := c.Start(ctx, tc.orch, tc.input, opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if _, err := c.Status(ctx, "bad-input-probe"); !errors.Is(err, durable.ErrInstanceNotFound) {
				t.Fatalf("an instance was created: %v", err)
			}
		})
	}
	if _, err := c.Status(ctx, "never-started"); !errors.Is(err, durable.ErrInstanceNotFound) {
		t.Fatalf("status of unknown: %v", err)
	}
}

func TestStartingARunningIDIsAnErrorAndAFinishedOneIsReplaced(t *testing.T) {
	release := make(chan struct{})
	var runs atomic.Int32
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Slow", func(ctx *orchestration.Context) (any, error) {
			var n int32
			err := ctx.CallActivity("Block", nil).Await(&n)
			return n, err
		}))
		must(rt.RegisterActivity("Block", func(ctx context.Context) (int32, error) {
			select {
			case <-release:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			return runs.Add(1), nil
		}))
	})
	ctx := waitCtx(t)
	c := rt.Client()
	if _, err := c.Start(ctx, "Slow", nil, durable.WithInstanceID("once")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "Slow", nil, durable.WithInstanceID("once")); !errors.Is(err, durable.ErrInstanceExists) {
		t.Fatalf("second start: %v", err)
	}
	close(release)
	st, err := c.WaitForCompletion(ctx, "once")
	if err != nil || string(st.Output) != "1" {
		t.Fatalf("%v %v", st, err)
	}
	if _, err := c.Start(ctx, "Slow", nil, durable.WithInstanceID("once")); err != nil {
		t.Fatalf("restart of a finished id: %v", err)
	}
	st, err = c.WaitForCompletion(ctx, "once")
	if err != nil || string(st.Output) != "2" {
		t.Fatalf("%v %v", st, err)
	}
	events, _ := c.History(ctx, "once")
	if n := len(events); n != 6 {
		t.Fatalf("the replaced instance's history has %d events, want only the new execution's 6", n)
	}
}

func TestReopenAfterCleanShutdownKeepsStatusesAndOutputs(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, registerHello)
	ctx := waitCtx(t)
	var ids []string
	for i := 0; i < 5; i++ {
		id, err := rt.Client().Start(ctx, "HelloCities", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Client().WaitForCompletion(ctx, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	rt2 := open(t, durable.Options{Dir: dir}, registerHello)
	for _, id := range ids {
		st, err := rt2.Client().Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != helloOutput {
			t.Fatalf("%s after reopen: %s %s", id, st.RuntimeStatus, st.Output)
		}
	}
}

func TestShutdownMidFlightThenReopenFinishesTheInstances(t *testing.T) {
	dir := t.TempDir()
	gate := make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	register := func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("HelloCities", helloCities))
		must(rt.RegisterActivity("Hello", func(ctx context.Context, city string) (string, error) {
			if first.Load() && city == "Seattle" {
				<-gate // hold the first runtime's Seattle until shutdown
				return "", ctx.Err()
			}
			return "Hello " + city + "!", nil
		}))
	}
	rt := open(t, durable.Options{Dir: dir}, register)
	ctx := waitCtx(t)
	id, err := rt.Client().Start(ctx, "HelloCities", nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		events, _ := rt.Client().History(ctx, id)
		if len(events) >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	go func() { time.Sleep(50 * time.Millisecond); close(gate) }()
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	first.Store(false)
	rt2 := open(t, durable.Options{Dir: dir}, register)
	st, err := rt2.Client().WaitForCompletion(ctx, id)
	if err != nil || string(st.Output) != helloOutput {
		t.Fatalf("after reopen: %+v %v", st, err)
	}
}

func TestPassivatedInstanceIsReactivatedByItsNextMessage(t *testing.T) {
	rt := open(t, durable.Options{IdleTimeout: 20 * time.Millisecond}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Slow", func(ctx *orchestration.Context) (any, error) {
			var s string
			err := ctx.CallActivity("Sleep", nil).Await(&s)
			return s, err
		}))
		must(rt.RegisterActivity("Sleep", func(ctx context.Context) (string, error) {
			time.Sleep(100 * time.Millisecond)
			return "slept", nil
		}))
	})
	ctx := waitCtx(t)
	for i := 0; i < 3; i++ {
		id, err := rt.Client().Start(ctx, "Slow", nil, durable.WithInstanceID("p"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := rt.Client().WaitForCompletion(ctx, id)
		if err != nil || string(st.Output) != `"slept"` {
			t.Fatalf("%v %v", st, err)
		}
		time.Sleep(60 * time.Millisecond) // let it passivate
	}
}

// Passivated instances must leave nothing behind in the actor system: a
// leak per activation (protoactor keeps a guardian per supervisor strategy
// value forever) grows memory with every instance ever run.
func TestPassivatedInstancesLeaveNoActorsBehind(t *testing.T) {
	rt := open(t, durable.Options{IdleTimeout: 20 * time.Millisecond}, registerHello)
	c := rt.Client()
	ctx := waitCtx(t)
	run := func(n int) {
		for i := 0; i < n; i++ {
			id, err := c.Start(ctx, "HelloCities", nil)
			if err != nil {
				t.Fatal(err)
			}
			if st, err := c.WaitForCompletion(ctx, id); err != nil || string(st.Output) != helloOutput {
				t.Fatalf("%+v %v", st, err)
			}
		}
	}
	run(1) // warm up whatever protoactor creates once
	time.Sleep(100 * time.Millisecond)
	base := rt.Stats().Actors // a count read too early only makes the check laxer
	if base == 0 {
		t.Fatal("Stats().Actors is 0 on a running node")
	}
	before := rt.Stats()
	run(100)
	waitFor(t, fmt.Sprintf("the 100 instances to passivate: back to %d actors", base), func() bool { return rt.Stats().Actors <= base })
	// Each instance commits at least four times: its start with its first
	// turn, then a turn per activity result.
	st := rt.Stats()
	commits, txns := st.Commits-before.Commits, st.Transactions-before.Transactions
	if commits < 400 || txns < 1 || txns > commits {
		t.Fatalf("commit counters: %d commits in %d transactions for 100 instances", commits, txns)
	}
}

func TestLockedDirectoryGivesAClearError(t *testing.T) {
	dir := t.TempDir()
	open(t, durable.Options{Dir: dir}, registerHello)
	_, err := durable.Open(durable.Options{Dir: dir, Logger: quiet})
	if !errors.Is(err, durable.ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("err %v", err)
	}
}

func TestCorruptDirectoryGivesAClearError(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir}, registerHello)
	must(rt.Close())
	manifest := filepath.Join(dir, "partition-000", "MANIFEST")
	if err := os.WriteFile(manifest, []byte("this is not a manifest"), 0o644); err != nil {
		t.Fatal(err)
	}
	// One partition of four damaged: the hub opens with that one down
	// (TestAPartitionWithDamagedFilesIsDownWhileTheOthersServe).
	rt, err := durable.Open(durable.Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	down := rt.PartitionsDown()
	if len(down) != 1 || down[0].Dir != filepath.Join(dir, "partition-000") || !strings.Contains(down[0].Error, "partition-000") {
		t.Fatalf("down %+v", down)
	}
}

func TestActivityContextCarriesTaskInfo(t *testing.T) {
	got := make(chan orchestration.ActivityInfo, 1)
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Info", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.CallActivity("Probe", nil).Await(nil)
		}))
		must(rt.RegisterActivity("Probe", func(ctx context.Context) error {
			info, _ := orchestration.ActivityInfoFrom(ctx)
			got <- info
			return nil
		}))
	})
	ctx := waitCtx(t)
	id, _ := rt.Client().Start(ctx, "Info", nil)
	if _, err := rt.Client().WaitForCompletion(ctx, id); err != nil {
		t.Fatal(err)
	}
	info := <-got
	if info.InstanceID != id || info.Name != "Probe" || info.TaskID != 0 || info.Attempt != 1 {
		t.Fatalf("info %+v", info)
	}
}

func TestRegisteringBadActivitiesIsAnError(t *testing.T) {
	rt, err := durable.Open(durable.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, fn := range []any{42, func() {}, func(int) error { return nil }, func(context.Context) int { return 0 }, func(context.Context, int, int) error { return nil }} {
		if err := rt.RegisterActivity("X", fn); !errors.Is(err, durable.ErrInvalidInput) {
			t.Errorf("%T: %v", fn, err)
		}
	}
	must(rt.RegisterActivity("X", hello))
	if err := rt.RegisterActivity("X", hello); !errors.Is(err, durable.ErrAlreadyRegistered) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestChangedOrchestratorCodeFailsWithANonDeterminismError(t *testing.T) {
	dir := t.TempDir()
	v1 := func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Flow", func(ctx *orchestration.Context) (any, error) {
			if err := ctx.CallActivity("A", nil).Await(nil); err != nil {
				return nil, err
			}
			return nil, ctx.CallActivity("B", nil).Await(nil)
		}))
		must(rt.RegisterActivity("A", func(context.Context) error { return nil }))
		// B runs until Close cancels it, so v1 never completes.
		must(rt.RegisterActivity("B", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }))
	}
	rt := open(t, durable.Options{Dir: dir}, v1)
	ctx := waitCtx(t)
	id, err := rt.Client().Start(ctx, "Flow", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to be scheduled", func() bool {
		events, _ := rt.Client().History(ctx, id)
		return len(events) >= 6
	})
	must(rt.Close())

	// v2 calls C where history says B was scheduled.
	rt2 := open(t, durable.Options{Dir: dir}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Flow", func(ctx *orchestration.Context) (any, error) {
			if err := ctx.CallActivity("A", nil).Await(nil); err != nil {
				return nil, err
			}
			return nil, ctx.CallActivity("C", nil).Await(nil)
		}))
		must(rt.RegisterActivity("A", func(context.Context) error { return nil }))
		must(rt.RegisterActivity("C", func(context.Context) error { return nil }))
	})
	st, err := rt2.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.RuntimeStatus != durable.StatusFailed || st.Failure.ErrorType != orchestration.ErrorTypeNonDeterminism ||
		!strings.Contains(st.Failure.Message, `history event 5`) ||
		!strings.Contains(st.Failure.Message, `TaskScheduled(name="B", taskId=1)`) ||
		!strings.Contains(st.Failure.Message, `TaskScheduled(name="C", taskId=1)`) {
		t.Fatalf("%s %+v", st.RuntimeStatus, st.Failure)
	}
}

func TestListPagesThroughInstancesWithFilters(t *testing.T) {
	rt := open(t, durable.Options{Partitions: 3}, func(rt *durable.Runtime) {
		registerHello(rt)
		must(rt.RegisterOrchestrator("Fails", func(*orchestration.Context) (any, error) { return nil, errors.New("no") }))
	})
	ctx := waitCtx(t)
	c := rt.Client()
	for i := 0; i < 25; i++ {
		name, prefix := "HelloCities", "ok-"
		if i%5 == 0 {
			name, prefix = "Fails", "bad-"
		}
		id, err := c.Start(ctx, name, nil, durable.WithInstanceID(fmt.Sprintf("%s%02d", prefix, i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitForCompletion(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	q := durable.Query{PageSize: 7}
	for pages := 0; ; pages++ {
		page, err := c.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page.Instances {
			seen = append(seen, st.InstanceID)
		}
		if page.ContinuationToken == "" {
			if pages != 3 {
				t.Fatalf("%d pages, want 4", pages+1)
			}
			break
		}
		q.ContinuationToken = page.ContinuationToken
	}
	if len(seen) != 25 {
		t.Fatalf("listed %d: %v", len(seen), seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] == seen[i-1] {
			t.Fatalf("duplicate %s", seen[i])
		}
	}
	failed, err := c.List(ctx, durable.Query{Statuses: []durable.RuntimeStatus{durable.StatusFailed}})
	if err != nil || len(failed.Instances) != 5 {
		t.Fatalf("failed: %d %v", len(failed.Instances), err)
	}
	prefixed, err := c.List(ctx, durable.Query{InstanceIDPrefix: "bad-"})
	if err != nil || len(prefixed.Instances) != 5 {
		t.Fatalf("prefix: %v", err)
	}
	none, err := c.List(ctx, durable.Query{CreatedFrom: time.Now().Add(time.Hour)})
	if err != nil || len(none.Instances) != 0 {
		t.Fatalf("future: %v", err)
	}
	if _, err := c.List(ctx, durable.Query{ContinuationToken: "!!"}); !errors.Is(err, durable.ErrInvalidInput) {
		t.Fatalf("bad token: %v", err)
	}
}

func TestCloseLeavesNoGoroutineBehind(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 2; i++ {
		rt, err := durable.Open(durable.Options{Dir: t.TempDir(), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		registerHello(rt)
		must(rt.Start())
		ctx := waitCtx(t)
		for j := 0; j < 20; j++ {
			id, err := rt.Client().Start(ctx, "HelloCities", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rt.Client().WaitForCompletion(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		must(rt.Close())
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestActivitiesRunningAtOnceAreBoundedPerNode(t *testing.T) {
	var running, peak atomic.Int32
	rt := open(t, durable.Options{MaxConcurrentActivities: 3}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Wide", func(ctx *orchestration.Context) (any, error) {
			tasks := make([]orchestration.Task, 40)
			for i := range tasks {
				tasks[i] = ctx.CallActivity("Busy", nil)
			}
			return nil, ctx.WhenAll(tasks...).Await(nil)
		}))
		must(rt.RegisterActivity("Busy", func(context.Context) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
			return nil
		}))
	})
	ctx := waitCtx(t)
	var ids []string
	for i := 0; i < 3; i++ {
		id, err := rt.Client().Start(ctx, "Wide", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if st, err := rt.Client().WaitForCompletion(ctx, id); err != nil || st.RuntimeStatus != durable.StatusCompleted {
			t.Fatalf("%v %v", st, err)
		}
	}
	if p := peak.Load(); p > 3 || p < 1 {
		t.Fatalf("peak of %d activities at once, want 1 to 3", p)
	}
}

// Status and WaitForCompletion answer a recently finished instance from
// memory; a restart under the same id, a rewind or a purge must never let
// them answer with the record they replaced, even when the new run ends in
// its first turn and the caller asks right after the call returned.
func TestFinishedStatusIsNeverStaleAfterRestartRewindOrPurge(t *testing.T) {
	failFirst := map[string]bool{}
	var mu sync.Mutex
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("Echo", func(ctx *orchestration.Context) (any, error) {
			var in int
			if err := ctx.Input(&in); err != nil {
				return nil, err
			}
			return in, nil
		}))
		must(rt.RegisterOrchestrator("FailOnce", func(ctx *orchestration.Context) (any, error) {
			var s string
			err := ctx.CallActivity("FailOnce", ctx.InstanceID()).Await(&s)
			return s, err
		}))
		must(rt.RegisterActivity("FailOnce", func(_ context.Context, id string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			if !failFirst[id] {
				failFirst[id] = true
				return "", errors.New("first attempt fails")
			}
			return "second", nil
		}))
	})
	c := rt.Client()
	ctx := waitCtx(t)
	wantOutput := func(id, want string) {
		t.Helper()
		st, err := c.WaitForCompletion(ctx, id)
		if err != nil || string(st.Output) != want {
			t.Fatalf("%s: wait: %+v %v, want output %s", id, st, err, want)
		}
		st, err = c.Status(ctx, id)
		if err != nil || string(st.Output) != want {
			t.Fatalf("%s: status: %+v %v, want output %s", id, st, err, want)
		}
	}
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("echo-%d", i)
		for run := 1; run <= 3; run++ {
			if _, err := c.Start(ctx, "Echo", run, durable.WithInstanceID(id)); err != nil {
				t.Fatal(err)
			}
			wantOutput(id, strconv.Itoa(run))
		}
		must(c.Purge(ctx, id))
		if _, err := c.Status(ctx, id); !errors.Is(err, durable.ErrInstanceNotFound) {
			t.Fatalf("%s: status after purge: %v", id, err)
		}
		if _, err := c.WaitForCompletion(ctx, id); !errors.Is(err, durable.ErrInstanceNotFound) {
			t.Fatalf("%s: wait after purge: %v", id, err)
		}
	}
	id, err := c.Start(ctx, "FailOnce", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.WaitForCompletion(ctx, id); err != nil || st.RuntimeStatus != durable.StatusFailed {
		t.Fatalf("first run: %+v %v", st, err)
	}
	must(c.Rewind(ctx, id, "retry"))
	if st, err := c.Status(ctx, id); err != nil || st.RuntimeStatus == durable.StatusFailed {
		t.Fatalf("status right after rewind: %+v %v", st, err)
	}
	wantOutput(id, `"second"`)
}
