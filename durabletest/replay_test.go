package durabletest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/httpapi"
	"github.com/durable-go/durable/orchestration"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// approval is the code the histories were recorded with: prepare, wait for
// the approval, answer.
func approval(ctx *orchestration.Context) (any, error) {
	var in, prepared string
	if err := ctx.Input(&in); err != nil {
		return nil, err
	}
	if err := ctx.CallActivity("Prepare", in).Await(&prepared); err != nil {
		return nil, err
	}
	var ok bool
	if err := ctx.WaitForExternalEvent("Approve").Await(&ok); err != nil {
		return nil, err
	}
	return map[string]any{"prepared": prepared, "approved": ok}, nil
}

// changed is approval with one step replaced.
func changed(activity string, beforeWait func(ctx *orchestration.Context) error, answer func(prepared string, ok bool) (any, error)) orchestration.Orchestrator {
	return func(ctx *orchestration.Context) (any, error) {
		var in, prepared string
		if err := ctx.Input(&in); err != nil {
			return nil, err
		}
		if activity != "" {
			if err := ctx.CallActivity(activity, in).Await(&prepared); err != nil {
				return nil, err
			}
		}
		if beforeWait != nil {
			if err := beforeWait(ctx); err != nil {
				return nil, err
			}
		}
		var ok bool
		if err := ctx.WaitForExternalEvent("Approve").Await(&ok); err != nil {
			return nil, err
		}
		if answer != nil {
			return answer(prepared, ok)
		}
		return map[string]any{"approved": ok, "prepared": prepared}, nil
	}
}

// recorded is an in-memory runtime with one instance waiting for its
// approval and one that completed, and the HTTP API in front of it.
type recorded struct {
	rt      *durable.Runtime
	srv     *httptest.Server
	waiting string
	done    string
}

func record(t *testing.T) *recorded {
	t.Helper()
	rt, err := durable.Open(durable.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	if err := rt.RegisterOrchestrator("Approval", approval); err != nil {
		t.Fatal(err)
	}
	if err := rt.RegisterActivity("Prepare", func(_ context.Context, in string) (string, error) { return "prepared " + in, nil }); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := rt.Client()
	r := &recorded{rt: rt}
	if r.waiting, err = c.Start(ctx, "Approval", "order-1", durable.WithInstanceID("waiting")); err != nil {
		t.Fatal(err)
	}
	if r.done, err = c.Start(ctx, "Approval", "order-2", durable.WithInstanceID("done")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{r.waiting, r.done} {
		// Prepare has completed: the code now waits for Approve.
		for !hasEvent(t, c, id, history.TaskCompleted) {
			if ctx.Err() != nil {
				t.Fatalf("%s: Prepare never completed", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := c.RaiseEvent(ctx, r.done, "Approve", true); err != nil {
		t.Fatal(err)
	}
	if st, err := c.WaitForCompletion(ctx, r.done); err != nil || st.RuntimeStatus != durable.StatusCompleted {
		t.Fatalf("done: %v %+v", err, st)
	}
	r.srv = httptest.NewServer(httpapi.New(c, httpapi.Options{}))
	t.Cleanup(r.srv.Close)
	return r
}

func hasEvent(t *testing.T, c *durable.Client, id string, typ history.Type) bool {
	events, err := c.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Type == typ {
			return true
		}
	}
	return false
}

// sources are the three forms of one instance's history a check replays.
func (r *recorded) sources(t *testing.T, id string) map[string]func(orchestration.Orchestrator) error {
	t.Helper()
	events, err := r.rt.Client().History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(r.srv.URL + httpapi.WebhookBase + "/instances/" + url.PathEscape(id) + "?showHistory=true&showHistoryOutput=true")
	if err != nil {
		t.Fatal(err)
	}
	status, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted) {
		t.Fatalf("GET status: %d %v %s", resp.StatusCode, err, status)
	}
	// `durable history --json` prints the historyEvents array alone.
	var payload struct {
		HistoryEvents json.RawMessage `json:"historyEvents"`
	}
	if err := json.Unmarshal(status, &payload); err != nil {
		t.Fatal(err)
	}
	return map[string]func(orchestration.Orchestrator) error{
		"Client.History": func(fn orchestration.Orchestrator) error { return durabletest.Replay(fn, events) },
		"HTTP API JSON":  func(fn orchestration.Orchestrator) error { return durabletest.ReplayJSON(fn, status) },
		"CLI JSON":       func(fn orchestration.Orchestrator) error { return durabletest.ReplayJSON(fn, payload.HistoryEvents) },
	}
}

func TestReplayOfRealHistoriesFindsTheFirstDivergence(t *testing.T) {
	r := record(t)
	timer := func(ctx *orchestration.Context) error { return ctx.CreateTimer(time.Hour).Await(nil) }
	patchedTimer := func(ctx *orchestration.Context) error {
		if ctx.IsPatched("wait-an-hour") {
			return timer(ctx)
		}
		return nil
	}
	for _, tc := range []struct {
		name      string
		instance  string
		code      orchestration.Orchestrator
		position  int    // -1: the replay is fine
		recorded  string // substrings of the error's fields
		requested string
		callSite  bool // the error names a line of this file
	}{
		{"same code, waiting", "waiting", approval, -1, "", "", false},
		{"patched new step, waiting", "waiting", changed("Prepare", patchedTimer, nil), -1, "", "", false},
		{"renamed activity", "waiting", changed("Check", nil, nil), 2,
			`TaskScheduled(name="Prepare", taskId=0)`, `TaskScheduled(name="Check", taskId=0)`, true},
		{"activity removed", "waiting", changed("", nil, nil), 2, `TaskScheduled(name="Prepare", taskId=0)`, "", true},
		{"new timer before the wait", "waiting", changed("Prepare", timer, nil), 5, "", "TimerCreated(taskId=1", true},
		{"returns without waiting", "waiting", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.CallActivity("Prepare", nil).Await(nil)
		}, 5, "", "ExecutionCompleted", false},
		{"same code, completed", "done", approval, -1, "", "", false},
		{"same output built differently, completed", "done", changed("Prepare", nil, nil), -1, "", "", false},
		{"other output, completed", "done", changed("Prepare", nil, func(p string, ok bool) (any, error) { return p + "!", nil }), 7,
			`ExecutionCompleted(output={"approved":true,"prepared":"prepared order-2"})`, `ExecutionCompleted(output="prepared order-2!")`, false},
		{"fails instead, completed", "done", changed("Prepare", nil, func(string, bool) (any, error) { return nil, errors.New("rejected") }), 7,
			"ExecutionCompleted(output=", "ExecutionCompleted(failed: *errors.errorString: rejected)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var first *orchestration.NonDeterminismError
			for source, replay := range r.sources(t, tc.instance) {
				err := replay(tc.code)
				if tc.position < 0 {
					if err != nil {
						t.Errorf("%s: %v", source, err)
					}
					continue
				}
				var nd *orchestration.NonDeterminismError
				if !errors.As(err, &nd) {
					t.Errorf("%s: want a NonDeterminismError, got %v", source, err)
					continue
				}
				if nd.Position != tc.position || !strings.Contains(nd.Recorded, tc.recorded) || !strings.Contains(nd.Requested, tc.requested) ||
					(tc.recorded == "") != (nd.Recorded == "") || (tc.requested == "") != (nd.Requested == "") ||
					tc.callSite != strings.Contains(nd.CallSite, "replay_test.go:") {
					t.Errorf("%s: %+v", source, nd)
				}
				if first == nil {
					first = nd
				} else if *nd != *first {
					t.Errorf("%s gives %+v, another source %+v", source, nd, first)
				}
			}
		})
	}
}

func TestReplayJSONRefusesHistoriesWithoutPositions(t *testing.T) {
	old := `{"historyEvents":[{"EventType":"ExecutionStarted","FunctionName":"Approval","Timestamp":"2026-01-01T00:00:00Z"}]}`
	if err := durabletest.ReplayJSON(approval, []byte(old)); err == nil || !strings.Contains(err.Error(), "no Position") {
		t.Fatalf("got %v", err)
	}
}

// history runs fn as the runtime would, turn by turn: it starts, then each
// of deliveries is applied in a turn of its own.
func historyOf(t *testing.T, fn orchestration.Orchestrator, deliveries ...*history.Event) []*history.Event {
	t.Helper()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	exec := orchestration.NewExecution("i", "e", fn, quiet)
	defer exec.Close()
	turn, err := exec.Apply([]*history.Event{
		{Type: history.OrchestratorStarted, Timestamp: at},
		{Type: history.ExecutionStarted, Timestamp: at, Name: "Orch", InstanceID: "i", ExecutionID: "e", Payload: []byte(`1`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	events := turn.Events
	for _, d := range deliveries {
		if exec.Done() {
			break
		}
		at = at.Add(time.Second)
		if turn, err = exec.Apply([]*history.Event{{Type: history.OrchestratorStarted, Timestamp: at}, d}); err != nil {
			t.Fatal(err)
		}
		events = append(events, turn.Events...)
	}
	return events
}

func TestReplayComparesHowTheExecutionEnded(t *testing.T) {
	approve := &history.Event{Type: history.EventRaised, Name: "Go", Payload: []byte(`true`)}
	panics := func(ctx *orchestration.Context) (any, error) {
		if err := ctx.WaitForExternalEvent("Go").Await(nil); err != nil {
			return nil, err
		}
		panic("boom")
	}
	continues := func(next int) orchestration.Orchestrator {
		return func(ctx *orchestration.Context) (any, error) {
			var n int
			if err := ctx.Input(&n); err != nil {
				return nil, err
			}
			if err := ctx.WaitForExternalEvent("Go").Await(nil); err != nil {
				return nil, err
			}
			return nil, ctx.ContinueAsNew(n + next)
		}
	}
	waits := func(ctx *orchestration.Context) (any, error) {
		return nil, ctx.WaitForExternalEvent("Go").Await(nil)
	}
	for _, tc := range []struct {
		name      string
		recorded  orchestration.Orchestrator
		replayed  orchestration.Orchestrator
		position  int // -1: fine
		requested string
	}{
		{"a panic replays to the same panic", panics, panics, -1, ""},
		{"a panic where history completed", waits, panics, 4, "ExecutionCompleted(failed: panic: boom)"},
		{"continue-as-new with the same input", continues(1), continues(1), -1, ""},
		{"continue-as-new with other input", continues(1), continues(2), 4, "ContinuedAsNew(input=3)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := historyOf(t, tc.recorded, approve)
			err := durabletest.Replay(tc.replayed, events)
			if tc.position < 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var nd *orchestration.NonDeterminismError
			if !errors.As(err, &nd) || nd.Position != tc.position || nd.Requested != tc.requested {
				t.Fatalf("got %v (%+v)", err, nd)
			}
		})
	}
}

// Code that reads ctx.Version() replays the JSON of a versioned instance
// as it ran: the JSON carries the version of its ExecutionStarted event.
func TestReplayJSONKeepsTheRecordedVersion(t *testing.T) {
	rt, err := durable.Open(durable.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	versioned := func(ctx *orchestration.Context) (any, error) {
		if ctx.Version() == "2" {
			if err := ctx.CallActivity("Receipt", nil).Await(nil); err != nil {
				return nil, err
			}
		}
		return nil, ctx.WaitForExternalEvent("Go").Await(nil)
	}
	if err := errors.Join(
		rt.RegisterOrchestrator("Order", versioned, durable.Version("2")),
		rt.RegisterActivity("Receipt", func(context.Context) error { return nil }),
		rt.Start(),
	); err != nil {
		t.Fatal(err)
	}
	c := rt.Client()
	ctx := t.Context()
	id, err := c.Start(ctx, "Order", nil)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !hasEvent(t, c, id, history.TaskCompleted); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the receipt never completed")
		}
	}
	srv := httptest.NewServer(httpapi.New(c, httpapi.Options{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + httpapi.WebhookBase + "/instances/" + url.PathEscape(id) + "?showHistory=true&showHistoryOutput=true")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"Version":"2"`) || !strings.Contains(string(body), `"version":"2"`) {
		t.Fatalf("the JSON does not show the version: %s", body)
	}
	if err := durabletest.ReplayJSON(versioned, body); err != nil {
		t.Fatalf("replay of the versioned JSON: %v", err)
	}
}
