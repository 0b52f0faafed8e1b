package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/history"
)

// approvalEnv is the approval app in a test environment, its activities
// replaced by fakes that record who was notified.
func approvalEnv(t *testing.T) (*durabletest.Env, func() []string) {
	env := durabletest.NewEnv(t, durabletest.EnvOptions{})
	if err := Register(env.Runtime()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notified []string
	fake := func(kind string) func(context.Context, Notice) (string, error) {
		return func(_ context.Context, n Notice) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			notified = append(notified, kind+" "+n.To)
			return "sent", nil
		}
	}
	env.OnActivity("RequestApproval", fake("asked"))
	env.OnActivity("Escalate", fake("paged"))
	env.Start()
	return env, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), notified...)
	}
}

func decision(t *testing.T, env *durabletest.Env, id string) Decision {
	t.Helper()
	st := env.Status(id)
	var d Decision
	if err := st.DecodeOutput(&d); err != nil {
		t.Fatalf("%s: %v %+v", st.RuntimeStatus, err, st.Failure)
	}
	return d
}

// The one-hour timeouts run on the environment's clock: the test advances
// it instead of waiting, so two hours of workflow time take milliseconds.
func TestUnansweredRequestEscalatesAfterAnHourAndExpiresAfterTwo(t *testing.T) {
	env, notified := approvalEnv(t)
	start := env.Now()
	id := env.StartOrchestration("Approval", Request{ID: "r1", Item: "laptop", Approver: "alice", Manager: "carol", Timeout: time.Hour})
	if st := env.Status(id); string(st.CustomStatus) != `"waiting for alice"` {
		t.Fatalf("after the start: %s %s", st.RuntimeStatus, st.CustomStatus)
	}

	env.Advance(59 * time.Minute)
	if st := env.Status(id); string(st.CustomStatus) != `"waiting for alice"` || len(notified()) != 1 {
		t.Fatalf("a minute before the timeout: %s, notified %v", st.CustomStatus, notified())
	}
	env.Advance(time.Minute)
	if st := env.Status(id); string(st.CustomStatus) != `"escalated to carol"` {
		t.Fatalf("at the timeout: %s", st.CustomStatus)
	}
	env.Advance(time.Hour)
	d := decision(t, env, id)
	if d != (Decision{RequestID: "r1", Outcome: "Expired", Escalated: true}) {
		t.Fatalf("decision %+v", d)
	}
	if got := notified(); len(got) != 2 || got[0] != "asked alice" || got[1] != "paged carol" {
		t.Fatalf("notified %v", got)
	}
	// The timers fired at their due times of workflow time.
	var fired []time.Duration
	for _, ev := range env.History(id) {
		if ev.Type == history.TimerFired {
			fired = append(fired, ev.FireAt.Sub(start))
		}
	}
	if len(fired) != 2 || !near(fired[0], time.Hour) || !near(fired[1], 2*time.Hour) {
		t.Fatalf("timers fired at %v after the start", fired)
	}
}

// The README's "Testing" example.
func TestManagerAnswerAfterTheEscalationDecides(t *testing.T) {
	env, _ := approvalEnv(t)
	id := env.StartOrchestration("Approval", Request{ID: "r2", Approver: "alice", Manager: "carol", Timeout: time.Hour})
	env.Advance(59 * time.Minute)
	if st := env.Status(id); string(st.CustomStatus) != `"waiting for alice"` {
		t.Fatalf("before the timeout: %s", st.CustomStatus)
	}
	env.Advance(time.Minute)
	if st := env.Status(id); string(st.CustomStatus) != `"escalated to carol"` {
		t.Fatalf("at the timeout: %s", st.CustomStatus)
	}
	env.RaiseEvent(id, EventName, Answer{Approved: true, By: "carol"})
	if d := decision(t, env, id); d != (Decision{RequestID: "r2", Outcome: "Approved", By: "carol", Escalated: true}) {
		t.Fatalf("decision %+v", d)
	}
}

func TestSkippingTimeRunsTheRequestToItsEnd(t *testing.T) {
	env, _ := approvalEnv(t)
	id := env.StartOrchestration("Approval", Request{ID: "r3", Approver: "alice", Manager: "carol", Timeout: 7 * 24 * time.Hour})
	st := env.RunUntilDone(id)
	if d := decision(t, env, id); st.RuntimeStatus != "Completed" || d.Outcome != "Expired" {
		t.Fatalf("%s %+v", st.RuntimeStatus, d)
	}
	if got := env.Now().Sub(durabletest.DefaultStart); !near(got, 14*24*time.Hour) {
		t.Fatalf("the clock moved %s, want two weeks", got)
	}
}

// near reports whether d is want, give or take the nanoseconds the engine
// puts between the events of one instant (durabletest.Grace).
func near(d, want time.Duration) bool { return d >= want && d <= want+durabletest.Grace }
