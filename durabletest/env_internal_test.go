package durabletest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable/orchestration"
)

// A step has settled only once the activities it scheduled have finished:
// while one is held, settling gives up with what is still open.
func TestSettleWaitsForARunningActivity(t *testing.T) {
	env := NewEnv(t, EnvOptions{SettleTimeout: 50 * time.Millisecond})
	release := make(chan struct{})
	if err := env.Runtime().RegisterOrchestrator("Hold", func(ctx *orchestration.Context) (any, error) {
		return orchestration.Await[string](ctx.CallActivity("Held", nil))
	}); err != nil {
		t.Fatal(err)
	}
	if err := env.Runtime().RegisterActivity("Held", func(ctx context.Context) (string, error) {
		select {
		case <-release:
			return "released", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}
	env.Start()
	id, err := env.Client().Start(t.Context(), "Hold", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.settle(); err == nil || !strings.Contains(err.Error(), "did not settle") || !strings.Contains(err.Error(), id) {
		t.Fatalf("settled while the activity ran: %v", err)
	}
	close(release)
	if err := env.settle(); err != nil {
		t.Fatal(err)
	}
	if st := env.Status(id); string(st.Output) != `"released"` {
		t.Fatalf("after settling: %s %s", st.RuntimeStatus, st.Output)
	}
}
