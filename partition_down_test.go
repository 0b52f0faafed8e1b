package durable_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// idOnPartition returns the first id made of prefix and a number that
// the hub's hash puts on partition p of n.
func idOnPartition(prefix string, p, n int) string {
	for i := 0; ; i++ {
		if id := fmt.Sprintf("%s-%d", prefix, i); persistence.PartitionOf(id, n) == p {
			return id
		}
	}
}

// entityOnPartition returns a Counter entity id on partition p of n.
func entityOnPartition(p, n int) durable.EntityID {
	for i := 0; ; i++ {
		id := durable.EntityID{Name: "Counter", Key: fmt.Sprintf("c%d", i)}
		if persistence.PartitionOf(id.String(), n) == p {
			return id
		}
	}
}

// damageManifest replaces dir/partition-001/MANIFEST with random bytes
// (garbage) or with its first bytes only (truncated).
func damageManifest(t *testing.T, dir, how string) string {
	t.Helper()
	path := filepath.Join(dir, "partition-001", "MANIFEST")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var damaged []byte
	switch how {
	case "garbage":
		damaged = make([]byte, len(old)+64)
		_, _ = rand.Read(damaged)
	case "truncated":
		damaged = old[:5] // not even its magic number
	}
	if err := os.WriteFile(path, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "partition-001")
}

// registerWaitAndCounter registers an orchestrator that waits for event
// "go" and returns its payload, and the Counter entity.
func registerWaitAndCounter(rt *durable.Runtime) {
	must(rt.RegisterOrchestrator("Wait", func(ctx *orchestration.Context) (any, error) {
		return orchestration.Await[string](ctx.WaitForExternalEvent("go"))
	}))
	counter, err := orchestration.EntityFromStruct[Counter]()
	must(err)
	must(rt.RegisterEntity("Counter", counter))
}

// TestAPartitionWithDamagedFilesIsDownWhileTheOthersServe puts garbage (or
// a truncated file) in place of partition 1's MANIFEST and restarts: the
// runtime opens, partition 1 is reported down with its directory, every
// request for its ids fails with ErrPartitionDown naming that directory
// (never a panic), and the other partitions start, list, serve entities and
// complete their instances, old and new.
func TestAPartitionWithDamagedFilesIsDownWhileTheOthersServe(t *testing.T) {
	for _, how := range []string{"garbage", "truncated"} {
		t.Run(how, func(t *testing.T) {
			const n = 4
			dir := t.TempDir()
			ctx := waitCtx(t)
			rt := open(t, durable.Options{Dir: dir, Partitions: n}, registerWaitAndCounter)
			ids := make([]string, n)
			for p := range ids {
				ids[p] = idOnPartition("wait", p, n)
				if _, err := rt.Client().Start(ctx, "Wait", nil, durable.WithInstanceID(ids[p])); err != nil {
					t.Fatal(err)
				}
			}
			for p := 0; p < n; p++ {
				must(rt.Client().SignalEntity(ctx, entityOnPartition(p, n), "Add", 1))
			}
			waitFor(t, "every instance waiting", func() bool {
				for _, id := range ids {
					if st, err := rt.Client().Status(ctx, id); err != nil || st.RuntimeStatus != durable.StatusRunning {
						return false
					}
				}
				return true
			})
			must(rt.Close())
			partDir := damageManifest(t, dir, how)

			rt = open(t, durable.Options{Dir: dir}, registerWaitAndCounter)
			c := rt.Client()
			st := rt.NodeStats()
			if len(st.PartitionsDown) != 1 || st.PartitionsDown[0].Partition != 1 || st.PartitionsDown[0].Dir != partDir || st.PartitionsDown[0].Error == "" {
				t.Fatalf("PartitionsDown %+v, want partition 1 at %s", st.PartitionsDown, partDir)
			}
			if fmt.Sprint(st.Hosted) != "[0 2 3]" || !st.Ready {
				t.Fatalf("hosted %v, ready %v", st.Hosted, st.Ready)
			}

			// Every request for partition 1 says it is down, and where.
			isDown := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, durable.ErrPartitionDown) || errors.Is(err, durable.ErrUnavailable) || !strings.Contains(err.Error(), partDir) {
					t.Fatalf("%s: %v, want ErrPartitionDown naming %s", what, err, partDir)
				}
			}
			down, downEntity := ids[1], entityOnPartition(1, n)
			_, err := c.Status(ctx, down)
			isDown("status", err)
			t.Logf("status of %s: %v", down, err)
			_, err = c.History(ctx, down)
			isDown("history", err)
			isDown("raise", c.RaiseEvent(ctx, down, "go", "x"))
			isDown("terminate", c.Terminate(ctx, down, "no"))
			isDown("suspend", c.Suspend(ctx, down, "no"))
			isDown("purge", c.Purge(ctx, down))
			isDown("resume", c.Resume(ctx, down, "no"))
			isDown("rewind", c.Rewind(ctx, down, "no"))
			_, err = c.WaitForCompletion(ctx, down)
			isDown("wait for completion", err)
			_, err = c.Restart(ctx, down, true)
			isDown("restart", err)
			isDown("delete entity", c.DeleteEntity(ctx, downEntity))
			_, err = c.Start(ctx, "Wait", nil, durable.WithInstanceID(idOnPartition("new", 1, n)))
			isDown("start", err)
			isDown("signal", c.SignalEntity(ctx, downEntity, "Add", 1))
			_, err = c.ReadEntityState(ctx, downEntity)
			isDown("read entity", err)
			_, err = c.PurgeBy(ctx, durable.PurgeFilter{})
			isDown("purge by filter", err)

			// Listings serve the healthy partitions and say which is missing.
			page, err := c.List(ctx, durable.Query{})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Instances) != n-1 || fmt.Sprint(page.PartitionsDown) != "[1]" {
				t.Fatalf("list: %d instances, down %v; want %d and [1]", len(page.Instances), page.PartitionsDown, n-1)
			}
			for _, s := range page.Instances {
				if s.InstanceID == down {
					t.Fatalf("listed %s of the down partition", down)
				}
			}
			ents, err := c.ListEntities(ctx, durable.EntityQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ents.Entities) != n-1 || fmt.Sprint(ents.PartitionsDown) != "[1]" {
				t.Fatalf("list entities: %d, down %v", len(ents.Entities), ents.PartitionsDown)
			}

			// The other partitions serve: old instances complete, new ones
			// start and complete, entities take operations.
			for p, id := range ids {
				if p == 1 {
					continue
				}
				must(c.RaiseEvent(ctx, id, "go", "fine"))
				if st := waitForStatus(t, rt, id, durable.StatusCompleted); string(st.Output) != `"fine"` {
					t.Fatalf("%s: %s", id, st.Output)
				}
				fresh := idOnPartition("new", p, n)
				if _, err := c.Start(ctx, "Wait", nil, durable.WithInstanceID(fresh)); err != nil {
					t.Fatal(err)
				}
				must(c.RaiseEvent(ctx, fresh, "go", "new"))
				waitForStatus(t, rt, fresh, durable.StatusCompleted)
				e := entityOnPartition(p, n)
				must(c.SignalEntity(ctx, e, "Add", 1))
				waitFor(t, "entity state 2", func() bool {
					s, err := c.ReadEntityState(ctx, e)
					return err == nil && strings.Contains(string(s), "2")
				})
			}
		})
	}
}

// TestAHubWithEveryPartitionDamagedDoesNotOpen: with nothing to serve, Open
// fails, naming each damaged directory.
func TestAHubWithEveryPartitionDamagedDoesNotOpen(t *testing.T) {
	dir := t.TempDir()
	rt := open(t, durable.Options{Dir: dir, Partitions: 1}, registerWaitAndCounter)
	must(rt.Close())
	path := filepath.Join(dir, "partition-000", "MANIFEST")
	must(os.WriteFile(path, []byte("garbage"), 0o644))
	_, err := durable.Open(durable.Options{Dir: dir, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "partition-000")) {
		t.Fatalf("open: %v, want an error naming partition-000", err)
	}
}
