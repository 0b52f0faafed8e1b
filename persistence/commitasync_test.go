package persistence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// asyncResults records the callbacks of CommitAsync batches.
type asyncResults struct {
	mu    sync.Mutex
	order []string // of the callbacks run
	errs  map[string]error
	calls map[string]int
	wg    sync.WaitGroup
}

func newAsyncResults() *asyncResults {
	return &asyncResults{errs: map[string]error{}, calls: map[string]int{}}
}

// callback returns the callback of batch id; wait returns once every
// callback handed out has run.
func (r *asyncResults) callback(id string) func(error) {
	r.wg.Add(1)
	return func(err error) {
		r.mu.Lock()
		r.order = append(r.order, id)
		r.errs[id] = err
		r.calls[id]++
		r.mu.Unlock()
		r.wg.Done()
	}
}

func TestCommitAsyncBatchesJoinGroupCommitsAndAreCalledBackOnceInCommitOrder(t *testing.T) {
	h := openHub(t, Options{Dir: t.TempDir(), Partitions: 1})
	p := h.Partition(0)
	res := newAsyncResults()
	visible := make(chan error, 1)
	const async, commits = 300, 50 // CommitAsync and Commit batches

	// Hold leadership so the first batches queue up behind it, as they do
	// behind a commit that is syncing.
	p.mu.Lock()
	p.leading = true
	p.mu.Unlock()
	for i := range async {
		id := fmt.Sprintf("async-%03d", i)
		var b Batch
		b.PutInstance(record(id, StatusRunning))
		b.AppendHistory(id, 1, 0, events(2, id))
		cb := res.callback(id)
		p.CommitAsync(&b, func(err error) {
			if err == nil {
				// Committed means readable, from the callback on.
				if _, rerr := p.LoadInstance(id); rerr != nil {
					select {
					case visible <- fmt.Errorf("%s called back but not readable: %w", id, rerr):
					default:
					}
				}
			}
			cb(err)
		})
	}
	res.mu.Lock()
	early := len(res.order)
	res.mu.Unlock()
	if early != 0 {
		t.Fatalf("%d callbacks ran before their batches could commit", early)
	}
	// Release leadership to the queue: what a leader does at the end of
	// its round.
	p.mu.Lock()
	p.queue[0].granted = true
	p.grantCommitterLocked()
	p.mu.Unlock()

	// Commit callers meanwhile share the same group commits.
	var wg sync.WaitGroup
	for i := range commits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("sync-%03d", i)
			var b Batch
			b.PutInstance(record(id, StatusRunning))
			if err := p.Commit(context.Background(), &b); err != nil {
				t.Errorf("Commit %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	res.wg.Wait()
	select {
	case err := <-visible:
		t.Fatal(err)
	default:
	}

	for i := range async {
		id := fmt.Sprintf("async-%03d", i)
		if res.calls[id] != 1 || res.errs[id] != nil {
			t.Fatalf("%s: called back %d times, err %v", id, res.calls[id], res.errs[id])
		}
		if res.order[i] != id {
			t.Fatalf("callback %d was %s's, want %s's (commit order)", i, res.order[i], id)
		}
	}
	ids, _ := p.ListByStatus(StatusRunning, "", 0)
	mustEqual(t, "running instances", len(ids), async+commits)
	if st := p.Stats(); st.Transactions >= async {
		t.Fatalf("stats %+v: %d queued batches were not merged", st, async)
	}
}

func TestCommitAsyncReportsWhatCommitWouldReturn(t *testing.T) {
	fault := atomic.Bool{}
	h := openHub(t, Options{Partitions: 1, CommitFault: func(int) error {
		if fault.Load() {
			return errors.New("injected")
		}
		return nil
	}})
	p := h.Partition(0)

	big := &Batch{}
	big.AppendHistory("big", 1, 0, events(100_000, "event-with-some-padding"))
	bad := &Batch{}
	bad.PutInstance(record("doomed", StatusRunning))
	bad.PutInbox("bad\x00id", 1, nil)
	good := func(id string) *Batch {
		b := &Batch{}
		b.PutInstance(record(id, StatusRunning))
		return b
	}
	cases := []struct {
		name     string
		batch    *Batch
		fault    bool
		want     error // nil: committed
		atOnce   bool  // called back before CommitAsync returns
		readable string
	}{
		{name: "an oversized batch is refused at once", batch: big, want: ErrBatchTooLarge, atOnce: true},
		{name: "an empty batch succeeds at once", batch: &Batch{}, atOnce: true},
		{name: "a bad batch fails alone", batch: bad, want: ErrInvalidID},
		{name: "a good batch commits", batch: good("fine"), readable: "fine"},
		{name: "a failed write is ErrWriteFailed", batch: good("unwritten"), fault: true, want: ErrWriteFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fault.Store(c.fault)
			defer fault.Store(false)
			done := make(chan error, 2)
			returned := atomic.Bool{}
			var before bool
			p.CommitAsync(c.batch, func(err error) {
				before = !returned.Load()
				done <- err
			})
			returned.Store(true)
			err := <-done
			if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("callback err = %v, want %v", err, c.want)
			}
			if c.atOnce && !before {
				t.Fatal("called back after CommitAsync returned, want before")
			}
			if c.readable != "" {
				if _, err := p.LoadInstance(c.readable); err != nil {
					t.Fatalf("LoadInstance(%s): %v", c.readable, err)
				}
			}
			if len(done) != 0 {
				t.Fatal("called back twice")
			}
		})
	}
	if _, err := p.LoadInstance("doomed"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed batch was partly applied: %v", err)
	}
	if _, err := p.LoadInstance("unwritten"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a batch whose write failed was applied: %v", err)
	}
}

func TestCloseRunsTheCallbacksOfEveryQueuedCommitAsyncThenRefusesNewOnes(t *testing.T) {
	dir := t.TempDir()
	h, err := Open(Options{Dir: dir, Partitions: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p := h.Partition(0)
	var called, failed atomic.Int64
	const n = 500
	for i := range n {
		id := fmt.Sprintf("i-%03d", i)
		var b Batch
		b.PutInstance(record(id, StatusRunning))
		p.CommitAsync(&b, func(err error) {
			if err != nil {
				failed.Add(1)
			}
			called.Add(1)
		})
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if called.Load() != n || failed.Load() != 0 {
		t.Fatalf("after Close: %d of %d called back, %d failed", called.Load(), n, failed.Load())
	}
	var late error
	var b Batch
	b.PutInstance(record("late", StatusRunning))
	p.CommitAsync(&b, func(err error) { late = err })
	if !errors.Is(late, ErrClosed) {
		t.Fatalf("CommitAsync after Close: %v, want ErrClosed at once", late)
	}

	h2 := openHub(t, Options{Dir: dir, Partitions: 1})
	ids, _ := h2.Partition(0).ListByStatus(StatusRunning, "", 0)
	mustEqual(t, "instances after reopening", len(ids), n)
}
