package durable_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable"
)

// A remote entity's batch whose new state is not JSON is rolled back: the
// entity keeps the state of the batch before, on disk too (the runtime is
// reopened), and serves the next batch.
func TestARemoteEntityBatchWithAStateThatIsNotJSONIsRolledBack(t *testing.T) {
	dir := t.TempDir()
	var batches atomic.Int32
	states := [][]byte{[]byte(`{"v":1}`), []byte(`{"v":`), []byte(`{"v":3}`)}
	var before [3]atomic.Value // the state each batch was handed
	open := func() *durable.Runtime {
		rt, err := durable.Open(durable.Options{Dir: dir, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		err = rt.SetRemoteEntities(func(_ context.Context, b durable.RemoteEntityBatch, done func(*durable.RemoteEntityResult, error)) {
			n := int(batches.Add(1)) - 1
			if n < len(before) {
				before[n].Store(string(b.State))
			}
			res := &durable.RemoteEntityResult{State: states[min(n, len(states)-1)], HasState: true}
			for range b.Operations {
				res.Results = append(res.Results, durable.RemoteOperationResult{})
			}
			done(res, nil)
		}, func(name string) bool { return name == "remote" })
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(); err != nil {
			t.Fatal(err)
		}
		return rt
	}
	ctx := waitCtx(t)
	id := durable.EntityID{Name: "remote", Key: "k"}
	signal := func(rt *durable.Runtime, batch int) {
		t.Helper()
		if err := rt.Client().SignalEntity(ctx, id, "set", nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the batch to run", func() bool { return int(batches.Load()) >= batch })
	}
	readsAs := func(rt *durable.Runtime, want string) {
		t.Helper()
		waitFor(t, "state "+want, func() bool {
			st, err := rt.Client().ReadEntityState(ctx, id)
			return err == nil && string(st) == want
		})
	}
	rt := open()
	signal(rt, 1)
	readsAs(rt, `{"v":1}`)
	signal(rt, 2)                      // the state that is not JSON
	if err := rt.Close(); err != nil { // waits for the batch's commit
		t.Fatal(err)
	}
	rt = open()
	t.Cleanup(func() { _ = rt.Close() })
	signal(rt, 3)
	readsAs(rt, `{"v":3}`)
	// Whether the rolled-back batch committed before the close or ran again
	// after the restart, the batch after it starts from the state before it.
	if got := before[2].Load(); got != `{"v":1}` {
		t.Fatalf("the batch after the rolled-back one was handed %v, want {\"v\":1}", got)
	}
}
