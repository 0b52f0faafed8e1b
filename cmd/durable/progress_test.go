package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/httpapi"
	"github.com/durable-go/durable/orchestration"
)

// The final status of start --wait shows the input the instance got (it
// used to print INPUT null: the polls leave the input out).
func TestStartWaitShowsTheInput(t *testing.T) {
	addr := node(t, "")
	r := durableCmd(t, addr, nil, "start", "FanOutFanIn", "100", "--wait")
	r.expect(t, 0, "Completed")
	if got := field(t, r.stdout, "INPUT"); got != "100" {
		t.Fatalf("INPUT %q, want 100:\n%s", got, r.stdout)
	}
	if got := field(t, r.stdout, "OUTPUT"); got != "10100" {
		t.Fatalf("OUTPUT %q, want 10100", got)
	}
	if !strings.Contains(r.stderr, "Completed  activities 100/100") {
		t.Fatalf("no final progress line with the activities done on stderr:\n%s", r.stderr)
	}
}

// stepsThenApproval runs two activities, then waits for the event Go.
func stepsThenApproval(rt *durable.Runtime) error {
	if err := rt.RegisterActivity("Step", func(ctx context.Context, n int) (int, error) { return n, nil }); err != nil {
		return err
	}
	return rt.RegisterOrchestrator("Steps", func(ctx *orchestration.Context) (any, error) {
		for i := range 2 {
			if _, err := orchestration.Await[int](ctx.CallActivity("Step", i)); err != nil {
				return nil, err
			}
		}
		return orchestration.Await[string](ctx.WaitForExternalEvent("Go"))
	})
}

func TestWatchShowsProgressUntilTheInstanceEnds(t *testing.T) {
	addr, rt := nodeWith(t, "", stepsThenApproval)
	ctx := t.Context()
	id, err := rt.Client().Start(ctx, "Steps", nil, durable.WithInstanceID("steps-1"))
	if err != nil {
		t.Fatal(err)
	}
	// Wait until both steps are in the history.
	for {
		h, err := rt.Client().History(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		completed := 0
		for _, e := range h {
			if e.Type.String() == "TaskCompleted" {
				completed++
			}
		}
		if completed == 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Not finished: watch gives up after its timeout, having shown where
	// the instance stands.
	r := durableCmd(t, addr, nil, "watch", id, "--timeout", "150ms")
	r.expect(t, 1)
	if want := "steps-1  Running  activities 2/2  waiting for an event"; !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr lacks %q:\n%s", want, r.stderr)
	}
	if strings.Contains(r.stderr, "\r") || strings.Contains(r.stderr, "\033[") {
		t.Fatalf("progress redrawn with control characters on a non-terminal:\n%q", r.stderr)
	}

	if err := rt.Client().RaiseEvent(ctx, id, "Go", "done"); err != nil {
		t.Fatal(err)
	}
	r = durableCmd(t, addr, nil, "watch", id)
	r.expect(t, 0, "Completed", `"done"`)
	if want := "steps-1  Completed  activities 2/2"; !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr lacks %q:\n%s", want, r.stderr)
	}

	durableCmd(t, addr, nil, "watch").expect(t, 2)
	durableCmd(t, addr, nil, "watch", "no-such-id").expect(t, 1)
}

func TestWatchRedrawsOneLineOnATerminal(t *testing.T) {
	addr := node(t, "")
	var out, errOut strings.Builder
	c := &cli{stdout: &out, stderr: &errOut, tty: true, getenv: func(k string) string {
		if k == "DURABLE_ADDR" {
			return addr
		}
		return ""
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := c.run(ctx, []string{"start", "Orchestrator", "--wait"}); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	s := errOut.String()
	if strings.Contains(s, "\n") || !strings.Contains(s, "\r\033[K") || !strings.HasSuffix(s, "\r\033[K") {
		t.Fatalf("terminal progress %q: want one line redrawn in place and cleared at the end", s)
	}
	if !strings.Contains(s, "activities") {
		t.Fatalf("terminal progress %q shows no activities", s)
	}
}

func TestProgressLine(t *testing.T) {
	id := func(n int64) *int64 { return &n }
	ev := func(typ, name string, task int64, more ...string) httpapi.HistoryEvent {
		e := httpapi.HistoryEvent{EventType: typ, Name: name, TaskID: id(task)}
		if len(more) > 0 {
			e.FireAt = more[0]
		}
		return e
	}
	for _, c := range []struct {
		name   string
		status string
		events []httpapi.HistoryEvent
		custom string
		want   string
	}{
		{"pending", "Pending", nil, "", "Pending"},
		{"waiting for an event", "Running", []httpapi.HistoryEvent{ev("ExecutionStarted", "X", -1)}, "", "Running  waiting for an event"},
		{"fan-out in flight", "Running", []httpapi.HistoryEvent{
			ev("TaskCompleted", "", 0), ev("TaskScheduled", "Double", 1), ev("TaskScheduled", "Double", 2), ev("TaskScheduled", "Hello", 3),
		}, "", "Running  activities 1/4  Double ×2, Hello"},
		{"a timer and a custom status", "Running", []httpapi.HistoryEvent{
			ev("TaskCompleted", "", 0), ev("TimerCreated", "", 1, "2026-01-02T03:04:05.123Z"),
		}, `"polling"`, `Running  activities 1/1  timer until 03:04:05Z  "polling"`},
		{"a fired timer is no step", "Running", []httpapi.HistoryEvent{
			ev("TimerCreated", "", 1, "2026-01-02T03:04:05Z"), ev("TimerFired", "", 1, "2026-01-02T03:04:05Z"),
		}, "", "Running  waiting for an event"},
		{"an entity call", "Running", []httpapi.HistoryEvent{
			{EventType: "EntityOperationCalled", Name: "add", InstanceID: "@counter@k", TaskID: id(0)},
		}, "", "Running  entity counter@k add"},
		{"a timer left open at the end is no step", "Completed", []httpapi.HistoryEvent{ev("TimerCreated", "", 1, "2026-01-02T03:04:05Z")}, `"x"`, `Completed  "x"`},
		{"done", "Completed", []httpapi.HistoryEvent{ev("TaskCompleted", "", 0), ev("TaskFailed", "", 1)}, "", "Completed  activities 2/2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &httpapi.StatusPayload{RuntimeStatus: c.status, HistoryEvents: &c.events}
			if c.custom != "" {
				st.CustomStatus = []byte(c.custom)
			}
			if got := progressLine(st); got != c.want {
				t.Errorf("progressLine = %q, want %q", got, c.want)
			}
		})
	}
}
