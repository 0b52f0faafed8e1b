package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Small fencing times keep these tests fast.
const (
	testGrace = 20 * time.Millisecond
	testCheck = 20 * time.Millisecond
	// noCheck disables the idle check in practice, so that only a commit
	// can reveal a move.
	noCheck = time.Hour
)

// noLeaks fails the test if goroutines started during it outlive it. Call
// it first, so that it runs after the cleanups that close hubs.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		var after int
		for range 200 {
			if after = runtime.NumGoroutine(); after <= before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	})
}

func openShared(t *testing.T, opts Options) *Hub {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	h, err := OpenShared(opts)
	if err != nil {
		t.Fatalf("OpenShared(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

func claim(t *testing.T, h *Hub, i int, owner string) *Partition {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := h.Claim(ctx, i, owner)
	if err != nil {
		t.Fatalf("Claim(%d, %q): %v", i, owner, err)
	}
	return p
}

// put commits the instance record of id alone.
func put(p *Partition, id string) error {
	var b Batch
	b.PutInstance(record(id, StatusRunning))
	return p.Commit(context.Background(), &b)
}

func ownerOf(t *testing.T, dir string, i int) ownerRecord {
	t.Helper()
	rec, _, err := readOwnerRecord(filepath.Join(dir, ownerRecordName(i)))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// steal writes the next epoch of partition i for owner, as another node's
// Claim would, without opening anything.
func steal(t *testing.T, dir string, i int, owner string) {
	t.Helper()
	rec := ownerOf(t, dir, i)
	data, _ := json.Marshal(ownerRecord{Format: ownerFormat, Epoch: rec.Epoch + 1, Owner: owner, Claim: "stolen"})
	if _, err := writeFileAtomic(dir, filepath.Join(dir, ownerRecordName(i)), ownerRecordName(i), data, false, quiet); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func isFenced(p *Partition) bool {
	select {
	case <-p.Fenced():
		return true
	default:
		return false
	}
}

type claimResult struct {
	p   *Partition
	err error
}

// claimAsync starts h.Claim(ctx, i, owner) and returns where its result
// will arrive.
func claimAsync(ctx context.Context, h *Hub, i int, owner string) <-chan claimResult {
	ch := make(chan claimResult, 1)
	go func() {
		p, err := h.Claim(ctx, i, owner)
		ch <- claimResult{p, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan claimResult) claimResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("Claim did not return")
		return claimResult{}
	}
}

func TestOpenSharedRecordsTheCountAndOpensNoPartition(t *testing.T) {
	noLeaks(t)
	tests := []struct {
		name    string
		create  int // Partitions when creating the hub
		reopen  int // Partitions when reopening it
		want    int
		wantErr error
	}{
		{"a new hub gets DefaultClusterPartitions", 0, 0, DefaultClusterPartitions, nil},
		{"reopening with the recorded count", 0, DefaultClusterPartitions, DefaultClusterPartitions, nil},
		{"an explicit count is recorded", 3, 0, 3, nil},
		{"a mismatched count is refused", 0, 5, 0, ErrPartitionMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h, err := OpenShared(Options{Dir: dir, Partitions: tt.create, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(dir, hubFileName))
			if err != nil {
				t.Fatal(err)
			}
			var hf hubFile
			if err := json.Unmarshal(data, &hf); err != nil {
				t.Fatal(err)
			}
			created := tt.create
			if created == 0 {
				created = DefaultClusterPartitions
			}
			mustEqual(t, "hub.json partitions", hf.Partitions, created)
			mustEqual(t, "Partitions()", h.Partitions(), created)
			for i := range h.Partitions() {
				if h.Held(i) || h.Partition(i) != nil {
					t.Fatalf("partition %d is held before any Claim", i)
				}
			}
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "partition-") {
					t.Fatalf("OpenShared created %s", e.Name())
				}
			}

			h, err = OpenShared(Options{Dir: dir, Partitions: tt.reopen, Logger: quiet})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("reopen: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			mustEqual(t, "Partitions() after reopen", h.Partitions(), tt.want)
		})
	}
}

func TestOpenSharedRejectsBadOptionsAndOpenHubsRejectClaims(t *testing.T) {
	noLeaks(t)
	for _, opts := range []Options{
		{},
		{Dir: t.TempDir(), FenceGrace: -1},
		{Dir: t.TempDir(), FenceCheckInterval: -1},
		{Dir: t.TempDir(), Partitions: -1},
	} {
		opts.Logger = quiet
		if h, err := OpenShared(opts); err == nil {
			h.Close()
			t.Fatalf("OpenShared(%+v) succeeded", opts)
		}
	}

	h := openHub(t, Options{Partitions: 2})
	if _, err := h.Claim(context.Background(), 0, "n"); err == nil {
		t.Fatal("Claim on a hub opened with Open succeeded")
	}
	if err := h.Release(0); err == nil {
		t.Fatal("Release on a hub opened with Open succeeded")
	}
	p := h.Partition(1)
	if !h.Held(1) || h.Held(2) || p.Epoch() != 0 || isFenced(p) {
		t.Fatalf("Open hub: Held(1) %v, Held(2) %v, Epoch %d, fenced %v", h.Held(1), h.Held(2), p.Epoch(), isFenced(p))
	}
	h.Close()
	if h.Held(1) {
		t.Fatal("Held after Close")
	}

	s := openShared(t, Options{Dir: t.TempDir(), Partitions: 2})
	for _, c := range []struct {
		i     int
		owner string
	}{{-1, "n"}, {2, "n"}, {0, ""}, {0, "\xff"}} {
		if _, err := s.Claim(context.Background(), c.i, c.owner); err == nil {
			t.Fatalf("Claim(%d, %q) succeeded", c.i, c.owner)
		}
	}
}

// Nodes that create one hub at once agree on its partition count.
func TestConcurrentOpenSharedAgreesOnThePartitionCount(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	const n = 8
	counts := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := 0 // "whatever is recorded"
			if g%2 == 1 {
				want = 2 + g
			}
			h, err := OpenShared(Options{Dir: dir, Partitions: want, Logger: quiet})
			if err == nil {
				counts[g] = h.Partitions()
				h.Close()
			}
			errs[g] = err
		}()
	}
	wg.Wait()
	h := openShared(t, Options{Dir: dir})
	for g := range n {
		switch {
		case errs[g] == nil:
			mustEqual(t, fmt.Sprintf("count seen by opener %d", g), counts[g], h.Partitions())
		case g%2 == 0 || !errors.Is(errs[g], ErrPartitionMismatch):
			t.Fatalf("opener %d: %v", g, errs[g])
		case 2+g == h.Partitions():
			t.Fatalf("opener %d asked for the recorded count %d and failed: %v", g, 2+g, errs[g])
		}
	}
}

// Two nodes on one directory: B's Claim fences A, but B opens the partition
// only once A has stopped writing and released it.
func TestAMovedPartitionIsWrittenByOneOwnerAtATime(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	a := openShared(t, Options{Dir: dir, Partitions: 2, FenceGrace: testGrace, FenceCheckInterval: noCheck})
	b := openShared(t, Options{Dir: dir, FenceGrace: testGrace, FenceCheckInterval: noCheck})

	pa := claim(t, a, 0, "node-a")
	if pa.Epoch() != 1 || !a.Held(0) || a.Partition(0) != pa || a.Held(1) {
		t.Fatalf("after A's Claim: epoch %d, held %v, Partition(0) %p (claimed %p), held(1) %v",
			pa.Epoch(), a.Held(0), a.Partition(0), pa, a.Held(1))
	}
	mustEqual(t, "record", ownerOf(t, dir, 0).Owner, "node-a")
	if err := put(pa, "before-move"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := claimAsync(ctx, b, 0, "node-b")
	waitFor(t, "B's epoch in the record", func() bool { return ownerOf(t, dir, 0).Epoch == 2 })
	time.Sleep(testGrace + 4*claimRetry) // B is past its grace, retrying on A's lock
	select {
	case r := <-got:
		t.Fatalf("B's Claim returned while A holds the partition: %v", r.err)
	default:
	}
	if b.Held(0) || b.Partition(0) != nil {
		t.Fatal("B holds the partition while A does")
	}
	if isFenced(pa) {
		t.Fatal("A is fenced without a commit or a check")
	}

	err := put(pa, "after-move")
	if !errors.Is(err, ErrFenced) || errors.Is(err, ErrClosed) {
		t.Fatalf("A's commit after the move: %v, want ErrFenced and not ErrClosed", err)
	}
	for _, want := range []string{"partition 0", filepath.Join(dir, "partition-000"), `"node-b"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if !isFenced(pa) {
		t.Fatal("Fenced() is not closed after a fenced commit")
	}
	if a.Held(0) || a.Partition(0) != nil {
		t.Fatal("A still holds the partition after it was fenced")
	}

	r := await(t, got)
	if r.err != nil {
		t.Fatalf("B's Claim: %v", r.err)
	}
	pb := r.p
	if pb.Epoch() != 2 || !b.Held(0) || b.Partition(0) != pb {
		t.Fatalf("B: epoch %d, held %v", pb.Epoch(), b.Held(0))
	}
	if _, err := pb.LoadInstance("before-move"); err != nil {
		t.Fatalf("B lost what A committed before the move: %v", err)
	}
	if _, err := pb.LoadInstance("after-move"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("A's fenced commit landed: %v", err)
	}
	if err := put(pb, "by-b"); err != nil {
		t.Fatal(err)
	}
	if err := put(pa, "later"); !errors.Is(err, ErrFenced) {
		t.Fatalf("A's later commit: %v, want ErrFenced", err)
	}
	if _, err := pa.LoadInstance("before-move"); !errors.Is(err, ErrFenced) {
		t.Fatalf("A's read after the move: %v, want ErrFenced", err)
	}
	if _, err := pb.LoadInstance("later"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("A's commit after the move landed: %v", err)
	}
}

// Commits racing a move are all or nothing: every commit acknowledged to
// the old owner is in the new owner's data; every commit refused with
// ErrFenced is not.
func TestCommitsRacingAMoveAreAcknowledgedOnlyIfTheyLanded(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	a := openShared(t, Options{Dir: dir, Partitions: 1, FenceGrace: testGrace, FenceCheckInterval: noCheck, NoSync: true})
	b := openShared(t, Options{Dir: dir, FenceGrace: testGrace, FenceCheckInterval: noCheck})
	pa := claim(t, a, 0, "node-a")

	const writers = 8
	var (
		mu      sync.Mutex
		acked   []string
		refused []string
		wg      sync.WaitGroup
		started = make(chan struct{}, writers)
	)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				id := fmt.Sprintf("w%d-%d", g, n)
				err := put(pa, id)
				mu.Lock()
				if err == nil {
					acked = append(acked, id)
				} else {
					refused = append(refused, id)
				}
				mu.Unlock()
				if n == 10 {
					started <- struct{}{}
				}
				if err != nil {
					if !errors.Is(err, ErrFenced) {
						t.Errorf("commit %s: %v, want nil or ErrFenced", id, err)
					}
					return
				}
			}
		}()
	}
	for range writers {
		<-started
	}
	pb := claim(t, b, 0, "node-b")
	wg.Wait()

	if len(acked) == 0 || len(refused) != writers {
		t.Fatalf("%d acknowledged, %d refused", len(acked), len(refused))
	}
	for _, id := range acked {
		if _, err := pb.LoadInstance(id); err != nil {
			t.Fatalf("acknowledged commit %s is missing: %v", id, err)
		}
	}
	for _, id := range refused {
		if _, err := pb.LoadInstance(id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("refused commit %s landed: %v", id, err)
		}
	}
}

// An idle partition learns from its periodic check that it lost its
// ownership, and releases the directory.
func TestAnIdleFencedPartitionNoticesWithoutACommit(t *testing.T) {
	noLeaks(t)
	tests := []struct {
		name string
		move func(t *testing.T, dir string)
		// then takes the partition over once A has let go of it.
		then     func(t *testing.T, a *Hub, dir string) *Partition
		inRecord string // how the fence error describes the record
	}{
		{
			"another owner claims it",
			func(t *testing.T, dir string) { steal(t, dir, 0, "node-b") },
			func(t *testing.T, a *Hub, dir string) *Partition {
				b := openShared(t, Options{Dir: dir, FenceGrace: testGrace, FenceCheckInterval: testCheck})
				return claim(t, b, 0, "node-b")
			},
			`now holds epoch 2 of "node-b"`,
		},
		{
			"its record is removed",
			func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, ownerRecordName(0))); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, a *Hub, dir string) *Partition { return claim(t, a, 0, "node-a") },
			"was removed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a := openShared(t, Options{Dir: dir, Partitions: 1, FenceGrace: testGrace, FenceCheckInterval: testCheck})
			pa := claim(t, a, 0, "node-a")
			if err := put(pa, "x"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * testCheck)
			if isFenced(pa) {
				t.Fatal("fenced while the record is its own")
			}

			tt.move(t, dir)
			moved := time.Now()
			select {
			case <-pa.Fenced():
				t.Logf("noticed after %v (FenceCheckInterval %v)", time.Since(moved), testCheck)
			case <-time.After(50 * testCheck):
				t.Fatalf("an idle partition did not notice the move within %v", 50*testCheck)
			}
			err := put(pa, "y")
			if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), tt.inRecord) {
				t.Fatalf("commit after the move: %v, want ErrFenced saying %q", err, tt.inRecord)
			}

			p := tt.then(t, a, dir)
			if _, err := p.LoadInstance("x"); err != nil {
				t.Fatal(err)
			}
			if _, err := p.LoadInstance("y"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("fenced commit landed: %v", err)
			}
		})
	}
}

// Writes outside group commit are fenced too, and so are reads.
func TestAFencedPartitionRefusesEveryWriteAndRead(t *testing.T) {
	noLeaks(t)
	tests := []struct {
		name string
		op   func(p *Partition) error
	}{
		{"Commit", func(p *Partition) error { return put(p, "z") }},
		{"DeleteHistoryBelow", func(p *Partition) error {
			_, err := p.DeleteHistoryBelow("x", 2, 0)
			return err
		}},
		{"RunValueLogGC", func(p *Partition) error { return p.RunValueLogGC(0.5) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h := openShared(t, Options{Dir: dir, Partitions: 1, FenceGrace: testGrace, FenceCheckInterval: noCheck})
			p := claim(t, h, 0, "node-a")
			commit(t, p, func(b *Batch) {
				b.PutInstance(record("x", StatusRunning))
				b.AppendHistory("x", 1, 0, events(3, "g1"))
			})
			steal(t, dir, 0, "node-b")
			if err := tt.op(p); !errors.Is(err, ErrFenced) {
				t.Fatalf("%s after the move: %v, want ErrFenced", tt.name, err)
			}
			if !isFenced(p) {
				t.Fatal("not fenced")
			}
			if _, err := p.LoadHistory("x", 1); !errors.Is(err, ErrFenced) {
				t.Fatalf("read after the move: %v, want ErrFenced", err)
			}
			if more, err := p.DeleteHistoryBelow("x", 2, 0); !errors.Is(err, ErrFenced) || more {
				t.Fatalf("DeleteHistoryBelow after the move: %v, %v", more, err)
			}
		})
	}
}

func TestAClaimWhoseContextEndsLeavesNothingOpen(t *testing.T) {
	noLeaks(t)
	t.Run("a context already done writes nothing", func(t *testing.T) {
		dir := t.TempDir()
		h := openShared(t, Options{Dir: dir, Partitions: 1, FenceGrace: testGrace, FenceCheckInterval: testCheck})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p, err := h.Claim(ctx, 0, "node-a")
		if !errors.Is(err, context.Canceled) || p != nil {
			t.Fatalf("Claim with a canceled ctx: %v, %v", p, err)
		}
		if h.Held(0) || h.Partition(0) != nil {
			t.Fatal("held after a failed Claim")
		}
		for _, name := range []string{ownerRecordName(0), partitionDirName(0)} {
			if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s exists after a canceled Claim: %v", name, err)
			}
		}
	})

	t.Run("a context that ends while the old owner holds on", func(t *testing.T) {
		dir := t.TempDir()
		a := openShared(t, Options{Dir: dir, Partitions: 1, FenceGrace: testGrace, FenceCheckInterval: noCheck})
		b := openShared(t, Options{Dir: dir, FenceGrace: testGrace, FenceCheckInterval: noCheck})
		pa := claim(t, a, 0, "node-a")
		if err := put(pa, "x"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testGrace+5*claimRetry)
		defer cancel()
		p, err := b.Claim(ctx, 0, "node-b")
		if !errors.Is(err, context.DeadlineExceeded) || p != nil {
			t.Fatalf("B's Claim: %v, %v; want DeadlineExceeded", p, err)
		}
		if !strings.Contains(err.Error(), "locked") {
			t.Errorf("error %q does not say the directory was locked", err)
		}
		if b.Held(0) || b.Partition(0) != nil {
			t.Fatal("B holds the partition after its Claim failed")
		}
		// B's epoch stays: A is fenced all the same.
		if err := put(pa, "y"); !errors.Is(err, ErrFenced) {
			t.Fatalf("A's commit: %v, want ErrFenced", err)
		}
		// A claims it back: its fenced partition closes first.
		pa2 := claim(t, a, 0, "node-a")
		mustEqual(t, "epoch of the claim back", pa2.Epoch(), uint64(3))
		if pa2 == pa || a.Partition(0) != pa2 {
			t.Fatal("the claim back did not open a new partition")
		}
		if _, err := pa2.LoadInstance("x"); err != nil {
			t.Fatal(err)
		}
		if err := put(pa2, "z"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestReleaseThenClaimAgain(t *testing.T) {
	noLeaks(t)
	const grace = 300 * time.Millisecond
	dir := t.TempDir()
	h := openShared(t, Options{Dir: dir, Partitions: 2, FenceGrace: grace, FenceCheckInterval: testCheck})
	if err := h.Release(0); err != nil {
		t.Fatalf("Release of a partition not held: %v", err)
	}

	start := time.Now()
	p1 := claim(t, h, 0, "node-a")
	if d := time.Since(start); d < grace {
		t.Fatalf("the first Claim took %v, less than FenceGrace %v", d, grace)
	}
	if again := claim(t, h, 0, "node-a"); again != p1 {
		t.Fatal("a Claim of a held partition did not return it")
	}
	if _, err := h.Claim(context.Background(), 0, "node-z"); err == nil {
		t.Fatal("a Claim for another owner of a partition held for node-a succeeded")
	}
	if err := put(p1, "x"); err != nil {
		t.Fatal(err)
	}

	if err := h.Release(0); err != nil {
		t.Fatal(err)
	}
	if h.Held(0) || h.Partition(0) != nil {
		t.Fatal("held after Release")
	}
	if err := put(p1, "y"); !errors.Is(err, ErrClosed) || errors.Is(err, ErrFenced) {
		t.Fatalf("commit after Release: %v, want ErrClosed", err)
	}
	if err := h.Release(0); err != nil {
		t.Fatalf("second Release: %v", err)
	}

	// The previous owner is this hub and it is closed: no grace.
	start = time.Now()
	p2 := claim(t, h, 0, "node-a")
	if d := time.Since(start); d >= grace {
		t.Errorf("claiming back a released partition took %v, want no FenceGrace wait", d)
	}
	mustEqual(t, "epoch", p2.Epoch(), uint64(2))
	if _, err := p2.LoadInstance("x"); err != nil {
		t.Fatal(err)
	}
	if err := put(p2, "z"); err != nil {
		t.Fatal(err)
	}
}

// Release or Close during a Claim that waits for the old owner cancels it.
func TestReleaseOrCloseCancelsAClaimInProgress(t *testing.T) {
	noLeaks(t)
	for _, stop := range []string{"Release", "Close"} {
		t.Run(stop, func(t *testing.T) {
			dir := t.TempDir()
			a := openShared(t, Options{Dir: dir, Partitions: 1, FenceGrace: testGrace, FenceCheckInterval: noCheck})
			b := openShared(t, Options{Dir: dir, FenceGrace: testGrace, FenceCheckInterval: noCheck})
			claim(t, a, 0, "node-a")
			got := claimAsync(context.Background(), b, 0, "node-b")
			waitFor(t, "B's epoch in the record", func() bool { return ownerOf(t, dir, 0).Epoch == 2 })
			time.Sleep(testGrace + 2*claimRetry)
			var err error
			if stop == "Release" {
				err = b.Release(0)
			} else {
				err = b.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			r := await(t, got)
			if !errors.Is(r.err, ErrClosed) || errors.Is(r.err, ErrFenced) || r.p != nil {
				t.Fatalf("Claim cut short by %s: %v, %v; want ErrClosed", stop, r.p, r.err)
			}
			if b.Held(0) {
				t.Fatal("held after the Claim was canceled")
			}
		})
	}
}

// Two nodes claiming one partition at once: whatever the interleaving, one
// of them ends up holding it, with the epoch in the record.
func TestRacingClaimsLeaveOneOwner(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	opts := Options{Dir: dir, Partitions: 1, FenceGrace: testGrace, FenceCheckInterval: testCheck}
	hubs := []*Hub{openShared(t, opts), openShared(t, opts)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var results []<-chan claimResult
	for n, h := range hubs {
		results = append(results, claimAsync(ctx, h, 0, fmt.Sprintf("node-%d", n)))
	}
	won := 0
	for n := range hubs {
		r := await(t, results[n])
		switch {
		case r.err == nil:
			won++
		case !errors.Is(r.err, ErrFenced):
			t.Fatalf("node-%d: %v", n, r.err)
		}
	}
	if won == 0 {
		t.Fatal("no Claim succeeded")
	}
	holders := func() []int {
		var hs []int
		for n, h := range hubs {
			if h.Held(0) {
				hs = append(hs, n)
			}
		}
		return hs
	}
	waitFor(t, "a single holder", func() bool { return len(holders()) == 1 })
	n := holders()[0]
	rec := ownerOf(t, dir, 0)
	p := hubs[n].Partition(0)
	if rec.Owner != fmt.Sprintf("node-%d", n) || rec.Epoch != p.Epoch() {
		t.Fatalf("record %+v, holder node-%d with epoch %d", rec, n, p.Epoch())
	}
	if err := put(p, "x"); err != nil {
		t.Fatal(err)
	}
}

// The recovery of a partition opened by Open works for a claimed one.
func TestAClaimRemovesEmptyStoreFilesLeftByACrash(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	h := openShared(t, Options{Dir: dir, Partitions: 1, FenceGrace: testGrace, FenceCheckInterval: testCheck})
	if err := put(claim(t, h, 0, "node-a"), "kept"); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(0); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, partitionDirName(0), "00099.mem")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := claim(t, h, 0, "node-a")
	if _, err := p.LoadInstance("kept"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(empty); runtime.GOOS != "windows" && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the empty file is still there: %v", err)
	}
}

func TestAnUnreadableOwnershipRecordFailsTheClaim(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	h := openShared(t, Options{Dir: dir, Partitions: 1, FenceGrace: testGrace, FenceCheckInterval: testCheck})
	path := filepath.Join(dir, ownerRecordName(0))
	if err := os.WriteFile(path, []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := h.Claim(context.Background(), 0, "node-a")
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Claim over a corrupt record: %v, want an error naming %s", err, path)
	}
	if h.Held(0) {
		t.Fatal("held after a failed Claim")
	}
	if data, _ := os.ReadFile(path); string(data) != "{garbage" {
		t.Fatalf("the corrupt record was overwritten: %q", data)
	}
}
