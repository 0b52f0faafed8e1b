package durable_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// syncBuffer is a log sink safe for the runtime's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const smallLimit = 1000

func big() string { return strings.Repeat("x", smallLimit+1) }

// limitWorld registers what the limit tests run, on a runtime whose
// payloads are limited to smallLimit bytes and histories to 40 events
// (warning at 20).
func limitWorld(t *testing.T, logs *syncBuffer) *durable.Runtime {
	return open(t, durable.Options{
		MaxPayloadBytes: smallLimit, HistoryWarnEvents: 20, MaxHistoryEvents: 40,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("BigOutput", func(*orchestration.Context) (any, error) { return big(), nil }))
		must(rt.RegisterOrchestrator("BigResult", func(ctx *orchestration.Context) (any, error) {
			return orchestration.Await[string](ctx.CallActivity("Big", nil))
		}))
		must(rt.RegisterActivity("Big", func(context.Context) (string, error) { return big(), nil }))
		must(rt.RegisterOrchestrator("BigState", func(ctx *orchestration.Context) (any, error) {
			return nil, ctx.CallEntity(durable.EntityID{Name: "Box", Key: "called"}, "put", big()).Await(nil)
		}))
		must(rt.RegisterEntity("Box", func(ctx *orchestration.EntityContext) error {
			var v, old string
			if err := ctx.Input(&v); err != nil {
				return err
			}
			if err := ctx.GetState(&old); err != nil {
				return err
			}
			switch v {
			case "grow":
				v = big()
			case "mark":
				v = old + "!"
			}
			return ctx.SetState(v)
		}))
		must(rt.RegisterOrchestrator("Steps", func(ctx *orchestration.Context) (any, error) {
			var n int
			if err := ctx.Input(&n); err != nil {
				return nil, err
			}
			for i := 0; i < n; i++ {
				if err := ctx.CallActivity("Nop", nil).Await(nil); err != nil {
					return nil, err
				}
			}
			return n, nil
		}))
		must(rt.RegisterOrchestrator("StepsAsNew", func(ctx *orchestration.Context) (any, error) {
			var left int
			if err := ctx.Input(&left); err != nil {
				return nil, err
			}
			for i := 0; i < 5 && left > 0; i, left = i+1, left-1 {
				if err := ctx.CallActivity("Nop", nil).Await(nil); err != nil {
					return nil, err
				}
			}
			if left > 0 {
				return nil, ctx.ContinueAsNew(left)
			}
			return "done", nil
		}))
		must(rt.RegisterActivity("Nop", func(context.Context) error { return nil }))
	})
}

// TestLimitsFailWhatGoesOverThemWithAMessageNamingTheLimit: every limit,
// with the failure it gives.
func TestLimitsFailWhatGoesOverThemWithAMessageNamingTheLimit(t *testing.T) {
	logs := &syncBuffer{}
	rt := limitWorld(t, logs)
	ctx := waitCtx(t)
	c := rt.Client()
	for _, tc := range []struct {
		name, orchestrator string
		input              any
		want               []string // in the failure message
	}{
		{"an output over the payload limit fails the instance", "BigOutput", nil, []string{"output of 1003 bytes", "MaxPayloadBytes"}},
		{"an activity result over the payload limit fails the task", "BigResult", nil, []string{`activity "Big" returned 1003 bytes`, "MaxPayloadBytes"}},
		{"an entity state over the payload limit fails the operation", "BigState", nil, []string{`entity operation "put" made a state of 1003 bytes`}},
		{"a history over MaxHistoryEvents fails the instance", "Steps", 100, []string{"over the limit of 40 (Options.MaxHistoryEvents)", "ContinueAsNew"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := c.Start(ctx, tc.orchestrator, tc.input)
			if err != nil {
				t.Fatal(err)
			}
			st := waitForStatus(t, rt, id, durable.StatusFailed)
			msg := st.Failure.Message
			if inner := st.Failure.Inner; inner != nil {
				msg += " / " + inner.Message
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Fatalf("failure %q does not say %q", msg, w)
				}
			}
		})
	}
	t.Run("the same steps with continue-as-new stay under the history limit", func(t *testing.T) {
		id, err := c.Start(ctx, "StepsAsNew", 100)
		if err != nil {
			t.Fatal(err)
		}
		if st := waitForStatus(t, rt, id, durable.StatusCompleted); string(st.Output) != `"done"` {
			t.Fatalf("output %s", st.Output)
		}
	})
	t.Run("a history past HistoryWarnEvents is logged", func(t *testing.T) {
		if !strings.Contains(logs.String(), "long history") {
			t.Fatalf("no warning in the log:\n%s", logs.String())
		}
	})
	t.Run("a signal whose state would go over the limit is rolled back", func(t *testing.T) {
		box := durable.EntityID{Name: "Box", Key: "signalled"}
		must(c.SignalEntity(ctx, box, "put", "small"))
		must(c.SignalEntity(ctx, box, "put", "grow"))
		must(c.SignalEntity(ctx, box, "put", "mark"))
		waitFor(t, "the third signal", func() bool {
			raw, err := c.ReadEntityState(ctx, box)
			return err == nil && string(raw) != `"small"`
		})
		if raw, _ := c.ReadEntityState(ctx, box); string(raw) != `"small!"` {
			t.Fatalf("state %s, want the one before the rolled back operation, marked", raw)
		}
		// The called entity's operation was rolled back too: no state.
		if _, err := c.ReadEntityState(ctx, durable.EntityID{Name: "Box", Key: "called"}); !errors.Is(err, durable.ErrEntityNotFound) {
			t.Fatalf("the entity of the failed call: %v, want ErrEntityNotFound", err)
		}
	})
	t.Run("client payloads over the limit are refused and change nothing", func(t *testing.T) {
		if _, err := c.Start(ctx, "Steps", big()); !errors.Is(err, durable.ErrPayloadTooLarge) {
			t.Fatalf("start: %v", err)
		}
		if err := c.SignalEntity(ctx, durable.EntityID{Name: "Box", Key: "x"}, "put", big()); !errors.Is(err, durable.ErrPayloadTooLarge) {
			t.Fatalf("signal: %v", err)
		}
	})
}
