package durable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

func registerSignalOnce(rt *durable.Runtime) {
	registerEntities(rt)
	must(rt.RegisterOrchestrator("SignalOnce", func(ctx *orchestration.Context) (any, error) {
		return nil, ctx.SignalEntity(durable.EntityID{Name: "Counter", Key: "shared"}, "add", 1)
	}))
}

// waitForCount polls the shared counter until it reads want.
func waitForCount(t *testing.T, rt *durable.Runtime, want int) {
	t.Helper()
	id := durable.EntityID{Name: "Counter", Key: "shared"}
	waitFor(t, fmt.Sprintf("the shared counter to read %d", want), func() bool {
		raw, err := rt.Client().ReadEntityState(context.Background(), id)
		var c Counter
		return err == nil && json.Unmarshal(raw, &c) == nil && c.Value == want
	})
}

// An entity signaled by many orchestrations keeps what it needs to
// recognise redeliveries one key per sender, not in its record: an
// operation must not rewrite a record that grows with every sender.
func TestEntityRecordDoesNotGrowWithItsSenders(t *testing.T) {
	const senders = 300
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir, NoSync: true}, registerSignalOnce)
	ctx := waitCtx(t)
	ids := make([]string, senders)
	for i := range ids {
		id, err := rt.Client().Start(ctx, "SignalOnce", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	waitForCount(t, rt, senders)
	must(rt.Close())

	hub, err := persistence.Open(persistence.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	const entity = "@counter@shared"
	part := hub.Partition(hub.PartitionOf(entity))
	rec, err := part.LoadEntity(entity)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) > 200 {
		t.Fatalf("the entity record grew with its %d senders: %d bytes: %.200s", senders, len(rec), rec)
	}
	for _, id := range ids[:10] {
		if seq, err := part.LoadEntitySeen(entity, id); err != nil || seq == 0 {
			t.Fatalf("no de-duplication entry for sender %s: %d %v", id, seq, err)
		}
	}
}
