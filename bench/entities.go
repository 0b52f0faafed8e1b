package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// W6: n add(1) signals spread round-robin over -entities Counter entities
// (default 1000), sent with Client.SignalEntity from -c workers. Each
// SignalEntity returns once the signal is durable and (no critical section
// being involved) applied, so the figure is applied operations per second.
// Then every counter's state is read and checked.

const w6DefaultEntities = 1000

// Counter is W6's entity: its state is the count.
type Counter struct {
	Value int `json:"value"`
}

// Add adds n.
func (c *Counter) Add(n int) { c.Value += n }

// Get returns the count.
func (c *Counter) Get() int { return c.Value }

func w6EntityID(k int) durable.EntityID {
	return durable.EntityID{Name: "Counter", Key: fmt.Sprintf("c-%05d", k)}
}

// w6Want is the final count of counter k: signal i goes to counter i % e.
func w6Want(n, e, k int) int {
	want := n / e
	if k < n%e {
		want++
	}
	return want
}

func runW6(ctx context.Context, w *Workload, cfg Config) *Result {
	n := orDefault(cfg.N, w.DefaultN)
	conc := orDefault(cfg.Concurrency, defaultEntityConc)
	e := min(orDefault(cfg.Entities, w6DefaultEntities), n)
	r := newResult(w, cfg, n)
	r.Concurrency = conc
	r.Entities = e
	ids := make([]durable.EntityID, e)
	for k := range ids {
		ids[k] = w6EntityID(k)
	}
	lat := make([]time.Duration, n)

	rt, dir, err := openRuntime(cfg, "W6", func(rt *durable.Runtime) error {
		counter, err := orchestration.EntityFromStruct[Counter]()
		if err != nil {
			return err
		}
		return rt.RegisterEntity("Counter", counter)
	})
	if err != nil {
		return failed(r, err)
	}
	defer os.RemoveAll(dir)
	defer rt.Close()
	c := rt.Client()

	sp := startSpan(rt)
	bad, err := parallel(n, conc, func(i int) error {
		t := time.Now()
		err := c.SignalEntity(ctx, ids[i%e], "add", 1)
		lat[i] = time.Since(t)
		if err != nil {
			return fmt.Errorf("signal %d to %s: %w", i, ids[i%e], err)
		}
		return nil
	})
	sp.end()
	if err != nil {
		fill(r, lat, sp, n, bad, err)
		return r
	}

	// Check every count right away; a count that is short is read again
	// for a while to tell a late signal (applied after SignalEntity
	// returned) from a lost one.
	wrongNow := map[int]bool{}
	for k := range ids {
		if got, err := readCount(ctx, c, ids[k]); err != nil || got != w6Want(n, e, k) {
			wrongNow[k] = true
		}
	}
	late := 0
	var firstErr error
	deadline := time.Now().Add(5 * time.Second)
	for k := range wrongNow {
		for {
			got, err := readCount(ctx, c, ids[k])
			if err == nil && got == w6Want(n, e, k) {
				late++
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				bad++
				if firstErr == nil {
					firstErr = fmt.Errorf("counter %s = %d (%v), want %d", ids[k], got, err, w6Want(n, e, k))
				}
				break
			}
			sleepCtx(ctx, 20*time.Millisecond)
		}
	}
	if late > 0 && firstErr == nil {
		firstErr = fmt.Errorf("%d counts were short right after every SignalEntity had returned and right later", late)
	}
	fill(r, lat, sp, n, bad, firstErr)
	r.LateCounts = &late
	r.Note = fmt.Sprintf("per_second: add(1) signals applied per second over %d counters (%d workers; latency: one SignalEntity call)", e, conc)
	return r
}

func readCount(ctx context.Context, c *durable.Client, id durable.EntityID) (int, error) {
	raw, err := c.ReadEntityState(ctx, id)
	if errors.Is(err, durable.ErrEntityNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var s Counter
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("state %s: %w", raw, err)
	}
	return s.Value, nil
}
