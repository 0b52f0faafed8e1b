package durabletest_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/orchestration"
)

func TestClockCallsWhatIsDueWhenItMoves(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := durabletest.NewClock(start)
	var calls []string
	c.AfterFunc(2*time.Minute, func() { calls = append(calls, "2m") })
	c.AfterFunc(time.Minute, func() { calls = append(calls, "1m") })
	stop := c.AfterFunc(3*time.Minute, func() { calls = append(calls, "3m") })
	c.AfterFunc(0, func() { calls = append(calls, "now") })
	if len(calls) != 1 || calls[0] != "now" {
		t.Fatalf("before moving: %v", calls)
	}
	c.Advance(time.Minute + 59*time.Second)
	if len(calls) != 2 || calls[1] != "1m" {
		t.Fatalf("at 1m59s: %v", calls)
	}
	if !stop() || stop() {
		t.Fatal("stop does not report the first cancel only")
	}
	c.Set(start) // never back
	if !c.Now().Equal(start.Add(time.Minute + 59*time.Second)) {
		t.Fatalf("the clock went back to %s", c.Now())
	}
	c.Advance(time.Hour)
	if len(calls) != 3 || calls[2] != "2m" {
		t.Fatalf("after an hour: %v (the stopped call must not run)", calls)
	}
}

// ticker sleeps on three 10-minute timers and reports the workflow time
// each one woke it at, as minutes since its start.
func ticker(ctx *orchestration.Context) (any, error) {
	start := ctx.Now()
	var woke []int
	for range 3 {
		if err := ctx.CreateTimer(10 * time.Minute).Await(nil); err != nil {
			return nil, err
		}
		woke = append(woke, int(ctx.Now().Sub(start)/time.Minute))
		_ = ctx.SetCustomStatus(len(woke))
	}
	return woke, nil
}

func TestAdvanceFiresTheTimersDueInTheSpanInOrder(t *testing.T) {
	env := durabletest.NewEnv(t, durabletest.EnvOptions{})
	if err := env.Runtime().RegisterOrchestrator("Ticker", ticker); err != nil {
		t.Fatal(err)
	}
	env.Start()
	id := env.StartOrchestration("Ticker", nil)
	if started := env.History(id)[0].Timestamp; !started.Equal(durabletest.DefaultStart) {
		t.Fatalf("the first turn ran at %s, not on the environment's clock", started)
	}
	env.Advance(25 * time.Minute)
	if st := env.Status(id); st.RuntimeStatus != durable.StatusRunning || string(st.CustomStatus) != "2" {
		t.Fatalf("after 25 minutes: %s, %s timers fired", st.RuntimeStatus, st.CustomStatus)
	}
	env.Advance(5 * time.Minute)
	st := env.Status(id)
	if st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != "[10,20,30]" {
		t.Fatalf("after 30 minutes: %s %s %+v", st.RuntimeStatus, st.Output, st.Failure)
	}
}

// Counter is an entity for the signal test.
type Counter struct {
	Value int `json:"value"`
}

// Add adds n.
func (c *Counter) Add(n int) { c.Value += n }

// Get returns the value.
func (c *Counter) Get() int { return c.Value }

func TestEventsSignalsAndFakesAtChosenMoments(t *testing.T) {
	env := durabletest.NewEnv(t, durabletest.EnvOptions{})
	rt := env.Runtime()
	counter, err := orchestration.EntityFromStruct[Counter]()
	if err != nil {
		t.Fatal(err)
	}
	id := durable.EntityID{Name: "Counter", Key: "c"}
	for _, err := range []error{
		rt.RegisterEntity("Counter", counter),
		// Billing waits for "bill", charges through an activity and adds
		// the charge to the counter in a sub-orchestration after a day.
		rt.RegisterOrchestrator("Billing", func(ctx *orchestration.Context) (any, error) {
			var amount int
			if err := ctx.WaitForExternalEvent("bill").Await(&amount); err != nil {
				return nil, err
			}
			charged, err := orchestration.Await[int](ctx.CallActivity("Charge", amount))
			if err != nil {
				return nil, err
			}
			return orchestration.Await[int](ctx.CallSubOrchestrator("Book", charged))
		}),
		rt.RegisterOrchestrator("Book", func(ctx *orchestration.Context) (any, error) {
			var n int
			if err := ctx.Input(&n); err != nil {
				return nil, err
			}
			if err := ctx.CreateTimer(24 * time.Hour).Await(nil); err != nil {
				return nil, err
			}
			if err := ctx.CallEntity(id, "add", n).Await(nil); err != nil {
				return nil, err
			}
			return orchestration.Await[int](ctx.CallEntity(id, "get", nil))
		}),
		rt.RegisterActivity("Charge", func(context.Context, int) (int, error) {
			panic("the real Charge must not run in this test")
		}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	env.OnActivity("Charge", func(_ context.Context, n int) (int, error) { return n * 10, nil })
	env.Start()

	env.SignalEntity(id, "add", 1)
	billing := env.StartOrchestration("Billing", nil)
	env.Advance(48 * time.Hour) // nothing happens: it waits for the event
	if st := env.Status(billing); st.RuntimeStatus != durable.StatusRunning {
		t.Fatalf("before the event: %s", st.RuntimeStatus)
	}
	env.RaiseEvent(billing, "bill", 4)
	env.Advance(23 * time.Hour)
	if st := env.Status(billing); st.RuntimeStatus != durable.StatusRunning {
		t.Fatalf("before the day is over: %s %s", st.RuntimeStatus, st.Output)
	}
	env.SignalEntity(id, "add", 100)
	st := env.RunUntilDone(billing)
	if st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != "141" {
		t.Fatalf("billing: %s %s %+v", st.RuntimeStatus, st.Output, st.Failure)
	}
	state, err := env.Client().ReadEntityState(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var c Counter
	if err := json.Unmarshal(state, &c); err != nil || c.Value != 141 {
		t.Fatalf("counter state %s: %v", state, err)
	}
	if got := env.Now().Sub(durabletest.DefaultStart); got < 72*time.Hour || got > 72*time.Hour+durabletest.Grace {
		t.Fatalf("the clock moved %s, want three days", got)
	}
}

// A signal scheduled for later waits in the entity's queue like a timer:
// the step that sends it settles, and the signal is applied when the
// clock reaches its time.
func TestAScheduledSignalIsAppliedWhenTheClockReachesIt(t *testing.T) {
	env := durabletest.NewEnv(t, durabletest.EnvOptions{})
	counter, err := orchestration.EntityFromStruct[Counter]()
	if err != nil {
		t.Fatal(err)
	}
	id := durable.EntityID{Name: "Counter", Key: "later"}
	if err := errors.Join(
		env.Runtime().RegisterEntity("Counter", counter),
		env.Runtime().RegisterOrchestrator("Remind", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.SignalEntity(id, "add", 5, orchestration.SignalAt(ctx.Now().Add(time.Hour)))
		}),
	); err != nil {
		t.Fatal(err)
	}
	env.Start()
	read := func() int {
		state, err := env.Client().ReadEntityState(t.Context(), id)
		if errors.Is(err, durable.ErrEntityNotFound) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		var c Counter
		if err := json.Unmarshal(state, &c); err != nil {
			t.Fatal(err)
		}
		return c.Value
	}
	remind := env.StartOrchestration("Remind", nil)
	if st := env.Status(remind); st.RuntimeStatus != durable.StatusCompleted {
		t.Fatalf("remind: %s", st.RuntimeStatus)
	}
	env.Advance(59 * time.Minute)
	if n := read(); n != 0 {
		t.Fatalf("applied %d before its time", n)
	}
	env.Advance(time.Minute)
	if n := read(); n != 5 {
		t.Fatalf("at its time the counter is %d", n)
	}
}
