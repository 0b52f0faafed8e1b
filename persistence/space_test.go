package persistence

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestCommitsFailWhileFreeSpaceIsBelowTheReserveAndResumeAfter: the free
// space is what freeBytesOf says (a filesystem filling up and emptied
// again); below the reserve, commits fail with ErrWriteFailed and write
// nothing; once space is back they succeed again without reopening.
func TestCommitsFailWhileFreeSpaceIsBelowTheReserveAndResumeAfter(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 30)
	orig := freeBytesOf
	freeBytesOf = func(string) (int64, error) { return free.Load(), nil }
	t.Cleanup(func() { freeBytesOf = orig })

	p := openHub(t, Options{Dir: t.TempDir(), Partitions: 1, MinFreeBytes: 1 << 20}).Partition(0)
	commit(t, p, func(b *Batch) { b.PutInstance(record("before", StatusRunning)) })
	free.Store(1000)
	waitUntil(t, "the low-space flag", p.lowSpace.Load)
	b := &Batch{}
	b.PutInstance(record("refused", StatusRunning))
	if err := p.Commit(context.Background(), b); !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("commit with 1000 bytes free: %v, want ErrWriteFailed", err)
	}
	if _, err := p.LoadInstance("refused"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused commit wrote something: %v", err)
	}
	free.Store(1 << 30)
	waitUntil(t, "space back", func() bool { return !p.lowSpace.Load() })
	commit(t, p, func(b *Batch) { b.PutInstance(record("after", StatusRunning)) })
	for _, id := range []string{"before", "after"} {
		if _, err := p.LoadInstance(id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in 10s", what)
		}
	}
}
