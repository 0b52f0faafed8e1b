package durable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
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

// A record written before the move keeps its senders in the record. Its
// entries still recognise a redelivery, and the next commit moves them to
// keys of their own.
func TestEntityRecordWithSendersInsideStillDropsRedeliveries(t *testing.T) {
	dir := t.TempDir()
	const (
		entity = "@counter@shared"
		sender = "legacy-sender"
	)
	// The state before the restart: the counter at 10, having applied the
	// sender's message 5, and that message still in the sender's outbox (its
	// acknowledgement was lost), so recovery delivers it again.
	hub, err := persistence.Open(persistence.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	legacy, _ := json.Marshal(map[string]any{"state": map[string]int{"Value": 10}, "hasState": true, "lastOp": time.Now(), "seen": map[string]uint64{sender: 5}})
	signal := history.Marshal(&history.Event{Type: history.EntityOperationSignaled, InstanceID: entity, Name: "add", Payload: []byte("1"), ParentInstanceID: sender})
	now := time.Now()
	for _, w := range []struct {
		id   string
		fill func(b *persistence.Batch)
	}{
		{entity, func(b *persistence.Batch) { b.PutEntity(entity, legacy) }},
		{sender, func(b *persistence.Batch) {
			b.PutInstance(&persistence.InstanceRecord{ID: sender, Name: "SignalOnce", ExecutionID: "x", Generation: 1, Status: persistence.StatusCompleted,
				CreatedAt: now, LastUpdatedAt: now, Flags: persistence.FlagUsesOutbox})
			b.PutOutbox(sender, 5, signal)
		}},
	} {
		var b persistence.Batch
		w.fill(&b)
		if err := hub.Partition(hub.PartitionOf(w.id)).Commit(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
	}
	must(hub.Close())

	rt := open(t, durable.Options{Dir: dir, NoSync: true}, registerSignalOnce)
	// The redelivery is dropped; a new sender's signal is applied. Once the
	// counter reads 11, the entity has committed after the redelivery.
	id, err := rt.Client().Start(waitCtx(t), "SignalOnce", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitForCount(t, rt, 11)
	time.Sleep(50 * time.Millisecond) // a wrongly applied redelivery would show as 12 by now
	waitForCount(t, rt, 11)
	must(rt.Close())

	hub, err = persistence.Open(persistence.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	part := hub.Partition(hub.PartitionOf(entity))
	rec, err := part.LoadEntity(entity)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(rec, &fields); err != nil || fields["seen"] != nil {
		t.Fatalf("the record still holds its senders: %s (%v)", rec, err)
	}
	for s, want := range map[string]bool{sender: true, id: true} {
		if seq, err := part.LoadEntitySeen(entity, s); err != nil || (seq > 0) != want {
			t.Fatalf("entry of %s: %d %v", s, seq, err)
		}
	}
	if out, _ := hub.Partition(hub.PartitionOf(sender)).LoadOutbox(sender); len(out) != 0 {
		t.Fatalf("the redelivered message was not acknowledged: %s", fmt.Sprint(out))
	}
}
