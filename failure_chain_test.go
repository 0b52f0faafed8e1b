package durable_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// The failure of an instance keeps the chain of failures that caused it:
// a sub-orchestration that failed because its activity failed shows, in
// the parent's Status, the parent's error, the child's, and the
// activity's, in order — from the store as from memory.
func TestFailureChainReachesStatus(t *testing.T) {
	dir := t.TempDir()
	register := func(rt *durable.Runtime) {
		must(rt.RegisterActivity("Charge", func(ctx context.Context, amount int) (int, error) {
			return 0, fmt.Errorf("card declined for %d", amount)
		}))
		must(rt.RegisterOrchestrator("Pay", func(ctx *orchestration.Context) (any, error) {
			return orchestration.Await[int](ctx.CallActivity("Charge", 42))
		}))
		must(rt.RegisterOrchestrator("Order", func(ctx *orchestration.Context) (any, error) {
			_, err := orchestration.Await[int](ctx.CallSubOrchestrator("Pay", nil))
			return nil, err
		}))
	}
	rt := open(t, durable.Options{Dir: dir}, register)
	ctx := waitCtx(t)
	id, err := rt.Client().Start(ctx, "Order", nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := rt.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	check := func(st *durable.Status) {
		t.Helper()
		if st.RuntimeStatus != durable.StatusFailed || st.Failure == nil {
			t.Fatalf("status %s, failure %+v", st.RuntimeStatus, st.Failure)
		}
		depth, f := 0, st.Failure
		var msgs []string
		for ; f != nil; f = f.Inner {
			depth++
			msgs = append(msgs, f.Message)
		}
		if depth < 3 || msgs[depth-1] != "card declined for 42" {
			t.Fatalf("failure chain %q: want the activity's failure at its end, at depth 3 or more", msgs)
		}
	}
	check(st)
	must(rt.Close())
	// After a restart, from the store.
	rt = open(t, durable.Options{Dir: dir}, register)
	st, err = rt.Client().Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	check(st)
}
