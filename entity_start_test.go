package durable_test

import (
	"context"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

func TestEntityOperationStartsAnOrchestration(t *testing.T) {
	started := make(chan string, 1)
	rt := open(t, durable.Options{}, func(rt *durable.Runtime) {
		registerHello(rt)
		must(rt.RegisterEntity("Launcher", func(ctx *orchestration.EntityContext) error {
			id, err := ctx.StartOrchestration("HelloCities", nil)
			if err != nil {
				return err
			}
			started <- id
			return ctx.SetState(id)
		}))
	})
	ctx := waitCtx(t)
	must(rt.Client().SignalEntity(ctx, durable.EntityID{Name: "Launcher", Key: "x"}, "launch", nil))
	id := <-started
	waitFor(t, "instance created", func() bool {
		_, err := rt.Client().Status(context.Background(), id)
		return err == nil
	})
	if st := complete(t, rt, id); string(st.Output) != helloOutput {
		t.Fatalf("%s %s", st.RuntimeStatus, st.Output)
	}
}
