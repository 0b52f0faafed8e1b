package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

type Counter struct{ Value int }

func (c *Counter) Add(n int)   { c.Value += n }
func (c *Counter) Get() int    { return c.Value }
func (c *Counter) Reset()      { c.Value = 0 }
func (c *Counter) Fail() error { c.Value = -1000; return errors.New("counter refuses") }

type Account struct{ Balance int }

func (a *Account) Deposit(n int) { a.Balance += n }
func (a *Account) Withdraw(n int) error {
	if n > a.Balance {
		return fmt.Errorf("insufficient funds: %d < %d", a.Balance, n)
	}
	a.Balance -= n
	return nil
}
func (a *Account) Get() int { return a.Balance }

func registerEntities(rt *durable.Runtime) {
	counter, err := orchestration.EntityFromStruct[Counter]()
	must(err)
	must(rt.RegisterEntity("Counter", counter))
	account, err := orchestration.EntityFromStruct[Account]()
	must(err)
	must(rt.RegisterEntity("Account", account))
	must(rt.RegisterOrchestrator("Transfer", transfer))
	must(rt.RegisterOrchestrator("UseCounter", func(ctx *orchestration.Context) (any, error) {
		id := durable.EntityID{Name: "Counter", Key: ctx.InstanceID()}
		if err := ctx.SignalEntity(id, "add", 5); err != nil {
			return nil, err
		}
		if err := ctx.CallEntity(id, "add", 2).Await(nil); err != nil {
			return nil, err
		}
		v, err := orchestration.Await[int](ctx.CallEntity(id, "get", nil))
		if err != nil {
			return nil, err
		}
		failErr := ctx.CallEntity(id, "fail", nil).Await(nil)
		after, _ := orchestration.Await[int](ctx.CallEntity(id, "get", nil))
		var tf *orchestration.TaskFailedError
		return fmt.Sprintf("%d %v %d", v, errors.As(failErr, &tf) && strings.Contains(tf.Failure.Message, "refuses"), after), nil
	}))
}

type transferInput struct {
	From, To string
	Amount   int
}

// transfer moves money between two accounts inside a critical section.
func transfer(ctx *orchestration.Context) (any, error) {
	var in transferInput
	if err := ctx.Input(&in); err != nil {
		return nil, err
	}
	from := durable.EntityID{Name: "Account", Key: in.From}
	to := durable.EntityID{Name: "Account", Key: in.To}
	lock, err := ctx.LockEntities(from, to)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if err := ctx.CallEntity(from, "withdraw", in.Amount).Await(nil); err != nil {
		return "declined", nil
	}
	if err := ctx.CallEntity(to, "deposit", in.Amount).Await(nil); err != nil {
		return nil, err
	}
	return "done", nil
}

func readInt(t *testing.T, rt *durable.Runtime, id durable.EntityID) int {
	t.Helper()
	raw, err := rt.Client().ReadEntityState(context.Background(), id)
	if err != nil {
		t.Fatalf("read %v: %v", id, err)
	}
	var m map[string]int
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, v := range m {
		return v
	}
	return 0
}

func TestSignalsToACounterAreAppliedInOrderAndSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir, IdleTimeout: 20 * time.Millisecond}, registerEntities)
	ctx := waitCtx(t)
	c := rt.Client()
	id := durable.EntityID{Name: "Counter", Key: "a"}
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); must(c.SignalEntity(ctx, id, "add", 1)) }()
	}
	wg.Wait()
	if v := readInt(t, rt, id); v != 100 {
		t.Fatalf("count %d", v)
	}
	time.Sleep(60 * time.Millisecond) // passivates
	must(c.SignalEntity(ctx, id, "Add", 1))
	must(rt.Close())
	rt2 := open(t, durable.Options{Dir: dir}, registerEntities)
	if v := readInt(t, rt2, id); v != 101 {
		t.Fatalf("after restart %d", v)
	}
	if _, err := rt2.Client().ReadEntityState(ctx, durable.EntityID{Name: "Counter", Key: "none"}); !errors.Is(err, durable.ErrEntityNotFound) {
		t.Fatalf("unknown entity: %v", err)
	}
	if err := rt2.Client().SignalEntity(ctx, durable.EntityID{Name: "Nope", Key: "x"}, "add", 1); !errors.Is(err, durable.ErrEntityNotRegistered) {
		t.Fatalf("unregistered: %v", err)
	}
}

func TestOrchestrationCallsAndSignalsAnEntityAndAFailedOperationRollsBack(t *testing.T) {
	rt := open(t, durable.Options{}, registerEntities)
	id, _ := rt.Client().Start(waitCtx(t), "UseCounter", nil)
	st := complete(t, rt, id)
	if string(st.Output) != `"7 true 7"` {
		t.Fatalf("%s %s %+v", st.RuntimeStatus, st.Output, st.Failure)
	}
}

func TestScheduledSignalArrivesLater(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		registerEntities(rt)
		must(rt.RegisterOrchestrator("Later", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.SignalEntity(durable.EntityID{Name: "Counter", Key: "later"}, "add", 3, orchestration.SignalAt(ctx.Now().Add(1500*time.Millisecond)))
		}))
	})
	id, _ := rt.Client().Start(waitCtx(t), "Later", nil)
	complete(t, rt, id)
	counter := durable.EntityID{Name: "Counter", Key: "later"}
	if _, err := rt.Client().ReadEntityState(context.Background(), counter); !errors.Is(err, durable.ErrEntityNotFound) {
		t.Fatalf("applied too early: %v", err)
	}
	waitFor(t, "scheduled signal", func() bool {
		_, err := rt.Client().ReadEntityState(context.Background(), counter)
		return err == nil
	})
	if v := readInt(t, rt, counter); v != 3 {
		t.Fatalf("count %d", v)
	}
}

func TestOverlappingCriticalSectionsInOppositeOrdersDoNotDeadlockAndKeepMoney(t *testing.T) {
	rt := open(t, durable.Options{}, registerEntities)
	ctx := waitCtx(t)
	c := rt.Client()
	accounts := []string{"a", "b", "c"}
	for _, k := range accounts {
		must(c.SignalEntity(ctx, durable.EntityID{Name: "Account", Key: k}, "deposit", 100))
	}
	var ids []string
	for i := 0; i < 30; i++ {
		from, to := accounts[i%3], accounts[(i+1)%3]
		if i%2 == 1 {
			from, to = to, from
		}
		id, err := c.Start(ctx, "Transfer", transferInput{From: from, To: to, Amount: 7 + i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if st := complete(t, rt, id); st.RuntimeStatus != durable.StatusCompleted {
			t.Fatalf("%s: %s %+v", id, st.RuntimeStatus, st.Failure)
		}
	}
	total := 0
	for _, k := range accounts {
		total += readInt(t, rt, durable.EntityID{Name: "Account", Key: k})
	}
	if total != 300 {
		t.Fatalf("money created or lost: total %d", total)
	}
}

func TestLocksAreReleasedWhenTheOrchestrationFails(t *testing.T) {
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		registerEntities(rt)
		must(rt.RegisterOrchestrator("LockThenFail", func(ctx *orchestration.Context) (any, error) {
			if _, err := ctx.LockEntities(durable.EntityID{Name: "Counter", Key: "l"}); err != nil {
				return nil, err
			}
			return nil, errors.New("failing while holding the lock")
		}))
	})
	ctx := waitCtx(t)
	id, _ := rt.Client().Start(ctx, "LockThenFail", nil)
	if st := complete(t, rt, id); st.RuntimeStatus != durable.StatusFailed {
		t.Fatalf("%s", st.RuntimeStatus)
	}
	must(rt.Client().SignalEntity(ctx, durable.EntityID{Name: "Counter", Key: "l"}, "add", 1))
	waitFor(t, "signal applied after the release", func() bool {
		_, err := rt.Client().ReadEntityState(ctx, durable.EntityID{Name: "Counter", Key: "l"})
		return err == nil
	})
}

func TestListAndDeleteEntities(t *testing.T) {
	rt := open(t, durable.Options{Partitions: 3}, registerEntities)
	ctx := waitCtx(t)
	c := rt.Client()
	for i := 0; i < 12; i++ {
		must(c.SignalEntity(ctx, durable.EntityID{Name: "Counter", Key: fmt.Sprintf("k%02d", i)}, "add", i))
	}
	must(c.SignalEntity(ctx, durable.EntityID{Name: "Account", Key: "x"}, "deposit", 1))
	var keys []string
	q := durable.EntityQuery{Name: "counter", PageSize: 5, FetchState: true}
	for {
		page, err := c.ListEntities(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entities {
			keys = append(keys, e.ID.Key)
			if e.State == nil || e.LastOperationTime.IsZero() || e.ID.Name != "counter" {
				t.Fatalf("%+v", e)
			}
		}
		if page.ContinuationToken == "" {
			break
		}
		q.ContinuationToken = page.ContinuationToken
	}
	if len(keys) != 12 || keys[0] != "k00" || keys[11] != "k11" {
		t.Fatalf("keys %v", keys)
	}
	must(c.DeleteEntity(ctx, durable.EntityID{Name: "Counter", Key: "k03"}))
	if _, err := c.ReadEntityState(ctx, durable.EntityID{Name: "Counter", Key: "k03"}); !errors.Is(err, durable.ErrEntityNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	all, _ := c.ListEntities(ctx, durable.EntityQuery{})
	if len(all.Entities) != 12 {
		t.Fatalf("all entities: %d", len(all.Entities))
	}
}

// The signal storm: orchestrations in a child process signal counters and
// the child is killed mid-way. Signals committed by an orchestration are
// redelivered after the restart and must be applied exactly once.
const (
	stormDirEnv    = "DURABLE_STORM_DIR"
	stormInstances = 40
	stormCounters  = 5
	stormRounds    = 10
)

func registerStorm(rt *durable.Runtime) {
	registerEntities(rt)
	must(rt.RegisterOrchestrator("Storm", func(ctx *orchestration.Context) (any, error) {
		for r := 0; r < stormRounds; r++ {
			for k := 0; k < stormCounters; k++ {
				if err := ctx.SignalEntity(durable.EntityID{Name: "Counter", Key: fmt.Sprint("storm-", k)}, "add", 1); err != nil {
					return nil, err
				}
			}
			if err := ctx.CallActivity("Pause", nil).Await(nil); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}))
	must(rt.RegisterActivity("Pause", func(context.Context) error { time.Sleep(5 * time.Millisecond); return nil }))
}

func TestStormChild(t *testing.T) {
	dir := os.Getenv(stormDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestSignalStormKilledMidWayAppliesEverySignalOnce")
	}
	rt := open(t, durable.Options{Dir: dir}, registerStorm)
	for i := 0; i < stormInstances; i++ {
		if _, err := rt.Client().Start(context.Background(), "Storm", nil, durable.WithInstanceID(fmt.Sprint("storm-", i))); err != nil {
			os.Exit(3)
		}
		fmt.Println("started", i)
	}
	time.Sleep(time.Hour)
}

func TestSignalStormKilledMidWayAppliesEverySignalOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes")
	}
	for _, delay := range []time.Duration{10 * time.Millisecond, 40 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			dir := t.TempDir()
			runChildAndKill(t, "TestStormChild", stormDirEnv, dir, stormInstances, delay)

			rt := open(t, durable.Options{Dir: dir}, registerStorm)
			if raw, err := rt.Client().ReadEntityState(context.Background(), durable.EntityID{Name: "Counter", Key: "storm-0"}); err == nil {
				t.Logf("counter storm-0 at restart: %s of %d", raw, stormInstances*stormRounds)
			}
			for i := 0; i < stormInstances; i++ {
				if st := complete(t, rt, fmt.Sprint("storm-", i)); st.RuntimeStatus != durable.StatusCompleted {
					t.Fatalf("storm-%d: %s %+v", i, st.RuntimeStatus, st.Failure)
				}
			}
			want := stormInstances * stormRounds
			for k := 0; k < stormCounters; k++ {
				id := durable.EntityID{Name: "Counter", Key: fmt.Sprint("storm-", k)}
				waitFor(t, "every signal applied", func() bool {
					raw, err := rt.Client().ReadEntityState(context.Background(), id)
					return err == nil && strings.Contains(string(raw), fmt.Sprint(want))
				})
				if v := readInt(t, rt, id); v != want {
					t.Fatalf("counter %d = %d, want %d", k, v, want)
				}
			}
			// Let stray redeliveries land, then check again: still exact.
			time.Sleep(100 * time.Millisecond)
			for k := 0; k < stormCounters; k++ {
				if v := readInt(t, rt, durable.EntityID{Name: "Counter", Key: fmt.Sprint("storm-", k)}); v != want {
					t.Fatalf("counter %d = %d after settling, want %d", k, v, want)
				}
			}
		})
	}
}
