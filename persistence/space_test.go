package persistence

import (
	"context"
	"errors"
	"fmt"
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

// TestTheCommitLeaderChecksTheFreeSpaceAgainBeforeItWritesMuch: with no
// periodic check in the way (its interval is an hour), the leader itself
// reads the free space again once the bytes it committed since the last
// check pass a quarter of the reserve, and refuses a commit that would take
// the last free space read below the reserve. Without that, a partition
// that writes fast fills more than the reserve between two periodic checks
// and Badger dies of SIGBUS on a full filesystem.
func TestTheCommitLeaderChecksTheFreeSpaceAgainBeforeItWritesMuch(t *testing.T) {
	const reserve = 1 << 20
	tests := []struct {
		name string
		// the free space after the partition opened; each commit that
		// succeeds takes its input's bytes from it, as a filesystem would
		free int64
		// commits of this many input bytes each, in order
		inputs []int
		// the index of the first commit refused, -1 for none
		refused int
	}{
		{"small commits on a roomy filesystem", 1 << 30, []int{100 << 10, 100 << 10, 100 << 10}, -1},
		{"a commit larger than the room above the reserve", reserve + 200<<10, []int{300 << 10}, 0},
		{"commits that use up the room above the reserve", reserve + 500<<10, []int{200 << 10, 200 << 10, 200 << 10}, 2},
		{"the filesystem filled by others, seen after a quarter of the reserve", 1000, []int{10 << 10, 300 << 10, 10 << 10}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var free atomic.Int64
			free.Store(1 << 30)
			origFree, origInterval := freeBytesOf, spaceCheckInterval
			freeBytesOf = func(string) (int64, error) { return free.Load(), nil }
			spaceCheckInterval = time.Hour
			t.Cleanup(func() { freeBytesOf, spaceCheckInterval = origFree, origInterval })

			p := openHub(t, Options{Dir: t.TempDir(), Partitions: 1, MinFreeBytes: reserve}).Partition(0)
			free.Store(tc.free)
			for i, n := range tc.inputs {
				id := fmt.Sprintf("c%d", i)
				rec := record(id, StatusRunning)
				rec.Input = make([]byte, n)
				b := &Batch{}
				b.PutInstance(rec)
				err := p.Commit(context.Background(), b)
				switch {
				case i < tc.refused || tc.refused < 0:
					if err != nil {
						t.Fatalf("commit %d of %d bytes: %v", i, n, err)
					}
					free.Add(-int64(n))
				case i == tc.refused:
					if !errors.Is(err, ErrWriteFailed) {
						t.Fatalf("commit %d of %d bytes: %v, want ErrWriteFailed", i, n, err)
					}
					if _, err := p.LoadInstance(id); !errors.Is(err, ErrNotFound) {
						t.Fatalf("the refused commit wrote something: %v", err)
					}
					return
				}
			}
			if tc.refused >= 0 {
				t.Fatalf("no commit refused, want commit %d", tc.refused)
			}
		})
	}
}
