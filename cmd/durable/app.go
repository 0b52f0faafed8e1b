package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// The sample function app `durable serve` hosts.
//
//	Orchestrator     the tutorial's: Hello for Tokyo, Seattle and London
//	HelloCities      Hello for each city of its input (a list; default the three)
//	FanOutFanIn      input n: Double(1..n) in parallel, returns the sum (no input: 0)
//	WaitForApproval  waits for the event "Approval" (true or false) for at
//	                 most ApprovalTimeout; returns "approved" or "rejected"
//	Tally            input a key: HelloCities as a sub-orchestration, then
//	                 signals Counter@key add 1 and returns what
//	                 Counter@key get answers afterwards
//	Hello, Double    the activities
//	Counter          an entity whose state is a number: add N, reset, get,
//	                 delete

// ApprovalTimeout is how long WaitForApproval waits for its event.
const ApprovalTimeout = time.Hour

// MaxFanOut bounds FanOutFanIn's n.
const MaxFanOut = 10000

var defaultCities = []string{"Tokyo", "Seattle", "London"}

// Orchestrator is the Durable Functions tutorial's orchestrator.
func Orchestrator(ctx *orchestration.Context) (any, error) {
	return greet(ctx, defaultCities)
}

// HelloCities greets the cities of its input in turn. Its input is
// optional: none, null, "" (what the Durable Functions JavaScript client
// sends for a start without input) and [] all mean the default cities.
func HelloCities(ctx *orchestration.Context) (any, error) {
	var cities []string
	if _, err := ctx.OptionalInput(&cities); err != nil {
		return nil, err
	}
	if len(cities) == 0 {
		cities = defaultCities
	}
	return greet(ctx, cities)
}

func greet(ctx *orchestration.Context, cities []string) ([]string, error) {
	out := make([]string, 0, len(cities))
	for _, city := range cities {
		s, err := orchestration.Await[string](ctx.CallActivity("Hello", city))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Hello greets a city.
func Hello(_ context.Context, city string) (string, error) {
	return "Hello " + city + "!", nil
}

// FanOutFanIn calls Double for 1..n at once and sums the results. No
// input (none, null or "") means n = 0.
func FanOutFanIn(ctx *orchestration.Context) (any, error) {
	var n int
	if _, err := ctx.OptionalInput(&n); err != nil {
		return nil, err
	}
	if n < 0 || n > MaxFanOut {
		return nil, fmt.Errorf("input n must be 0..%d, got %d", MaxFanOut, n)
	}
	tasks := make([]orchestration.Task, n)
	for i := range tasks {
		tasks[i] = ctx.CallActivity("Double", i+1)
	}
	if err := ctx.WhenAll(tasks...).Await(nil); err != nil {
		return nil, err
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

// Double doubles.
func Double(_ context.Context, n int) (int, error) { return 2 * n, nil }

// WaitForApproval races the event "Approval" against a durable timer. Its
// custom status is "waiting" until one of them wins.
func WaitForApproval(ctx *orchestration.Context) (any, error) {
	if err := ctx.SetCustomStatus("waiting"); err != nil {
		return nil, err
	}
	approval := ctx.WaitForExternalEvent("Approval")
	timeout := ctx.CreateTimer(ApprovalTimeout)
	winner := ctx.WhenAny(approval, timeout)
	if err := winner.Await(nil); err != nil {
		return nil, err
	}
	if err := ctx.SetCustomStatus(nil); err != nil {
		return nil, err
	}
	if winner.Winner() == timeout {
		return "rejected", nil
	}
	var approved bool
	if err := approval.Await(&approved); err != nil {
		return nil, fmt.Errorf("the Approval event must carry true or false: %w", err)
	}
	if approved {
		return "approved", nil
	}
	return "rejected", nil
}

// Counter is a durable entity holding a number, as in Durable Functions'
// samples: "add" adds its input, "reset" sets 0, "get" returns the number,
// "delete" deletes the entity.
func Counter(ctx *orchestration.EntityContext) error {
	var v int
	if err := ctx.GetState(&v); err != nil {
		return err
	}
	switch strings.ToLower(ctx.Operation()) {
	case "add":
		var n int
		if err := ctx.Input(&n); err != nil {
			return err
		}
		return ctx.SetState(v + n)
	case "reset":
		return ctx.SetState(0)
	case "get":
		return ctx.Return(v)
	case "delete":
		ctx.DeleteState()
		return nil
	}
	return fmt.Errorf("Counter has no operation %q (add, reset, get, delete)", ctx.Operation())
}

// Tally exercises the messages between instances and entities (in a
// cluster, between partitions on different nodes): a sub-orchestration, an
// entity signal through the durable outbox, and an entity call.
func Tally(ctx *orchestration.Context) (any, error) {
	var key string // no input (none, null or ""): the empty key
	if _, err := ctx.OptionalInput(&key); err != nil {
		return nil, err
	}
	if _, err := orchestration.Await[[]string](ctx.CallSubOrchestrator("HelloCities", nil)); err != nil {
		return nil, err
	}
	counter := orchestration.EntityID{Name: "Counter", Key: key}
	if err := ctx.SignalEntity(counter, "add", 1); err != nil {
		return nil, err
	}
	// Operations of one entity run in arrival order, and one sender's
	// messages arrive in the order sent: get sees the add.
	return orchestration.Await[int](ctx.CallEntity(counter, "get", nil))
}

// registerSampleApp registers the sample app's functions on rt.
func registerSampleApp(rt *durable.Runtime) error {
	for name, fn := range map[string]orchestration.Orchestrator{
		"Orchestrator":    Orchestrator,
		"HelloCities":     HelloCities,
		"FanOutFanIn":     FanOutFanIn,
		"WaitForApproval": WaitForApproval,
		"Tally":           Tally,
	} {
		if err := rt.RegisterOrchestrator(name, fn); err != nil {
			return err
		}
	}
	if err := rt.RegisterActivity("Hello", Hello); err != nil {
		return err
	}
	if err := rt.RegisterActivity("Double", Double); err != nil {
		return err
	}
	return rt.RegisterEntity("Counter", Counter)
}
