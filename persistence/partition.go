package persistence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// valueThreshold: values of at least this size go to Badger's value log
// instead of the LSM tree. 64 KiB keeps ordinary history events, records and
// messages in the LSM (one read, compaction-friendly) while big JSON payloads
// stop bloating the tree and its compactions.
const valueThreshold = 64 << 10

// maxGroupBytes caps the raw bytes (keys + values, including those that go
// to the value log and so barely count against Badger's limits) merged into
// one group-commit transaction, to bound the leader's memory. A batch larger
// than this alone still commits, alone.
const maxGroupBytes = 64 << 20

// badgerOptions returns the Badger options of one partition. Badger's
// defaults are sized for a dedicated database server (64 MiB memtables x 5,
// a 256 MiB block cache, 1 GiB value log files, 4 compactors); a hub hosts
// several partitions inside someone else's process, so every knob is sized
// down.
func badgerOptions(dir string, noSync bool, log *slog.Logger, part int) badger.Options {
	o := badger.DefaultOptions(dir).WithValueThreshold(valueThreshold)
	if dir == "" {
		// No value log in memory: every value stays in the LSM, and Badger
		// rejects values over the threshold, so raise it to its maximum.
		o = o.WithInMemory(true).WithValueThreshold(1 << 20)
	}
	return o.
		// Durability: fsync the WAL (value log) on every transaction commit.
		// Group commit makes that one fsync per merged batch.
		WithSyncWrites(!noSync).
		// 16 MiB memtables, at most 2 (one being written, one being
		// flushed): ~32 MiB of write buffer per partition. This also sets
		// the transaction limits (maxBatchSize = 15% of MemTableSize ≈
		// 2.4 MiB) that bound a group commit.
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		// No block compression and no block cache: records and history
		// chunks are small and mostly unique, so compression saves little
		// disk but costs CPU on every flush and on every block read, and an
		// uncompressed table block is read straight from the mmapped file
		// (the OS page cache is the cache). Measured on W5 (a read of a
		// passivated instance per event): +7% and +20% events/s.
		WithCompression(options.None).
		WithBlockCacheSize(0).
		// Index cache: small and bounded, so table indexes and bloom
		// filters do not grow with the data set (0 would keep all of them in
		// memory).
		WithIndexCacheSize(4 << 20).
		// Two compactors: the minimum Badger accepts (besides zero), which
		// keeps L0 drained without taking every core of a 2-core machine.
		WithNumCompactors(2).
		// 64 MiB value log files: smaller files are rewritten sooner by
		// value log GC and preallocate/mmap less.
		WithValueLogFileSize(64 << 20).
		// Only one writer per partition exists (the group commit leader), so
		// conflict detection would only cost memory and CPU.
		WithDetectConflicts(false).
		// Badger's metrics are process-global expvars; not ours to publish.
		WithMetricsEnabled(false).
		WithLogger(badgerLogger{log: log.With("partition", part)})
}

// badgerLogger routes Badger's logs to slog. Badger's Info messages are
// routine (replaying, compaction, flushes): Debug level.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) logf(level slog.Level, format string, args []any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "component", "badger")
}

func (l badgerLogger) Errorf(f string, a ...interface{})   { l.logf(slog.LevelError, f, a) }
func (l badgerLogger) Warningf(f string, a ...interface{}) { l.logf(slog.LevelWarn, f, a) }
func (l badgerLogger) Infof(f string, a ...interface{})    { l.logf(slog.LevelDebug, f, a) }
func (l badgerLogger) Debugf(f string, a ...interface{})   { l.logf(slog.LevelDebug, f, a) }

// Partition is one partition of a hub: one Badger database and its group
// committer. Its methods are safe for concurrent use.
type Partition struct {
	index int
	dir   string
	db    *badger.DB
	log   *slog.Logger

	// Group-commit limits: half of Badger's transaction limits.
	maxCount int64
	maxSize  int64

	// dbMu guards the use of db against Close: readers hold it shared, close
	// holds it exclusively (Badger panics on an iterator of a closed DB).
	dbMu   sync.RWMutex
	closed bool // under dbMu (readers) and mu (writers)

	mu      sync.Mutex
	queue   []*pending // FIFO of batches not yet taken by a leader
	leading bool       // a leader is active (or has been granted leadership)
	// The partition's own leader, for rounds whose head is a CommitAsync
	// batch (its caller does not wait): kick grants it leadership
	// (buffered(1): one leader at a time), and it leads until close
	// closes kick; committerDone is closed when it has returned.
	kick          chan struct{}
	committerDone chan struct{}
	// notified holds the CommitAsync batches of the current round whose
	// result is known; only the round's leader touches it. At the end of
	// the round it goes to notify, whose one goroutine (the notifier)
	// calls the callbacks, round after round, while later rounds commit;
	// notifyDone is closed when it has returned.
	notified   []*pending
	notify     chan []*pending
	notifyDone chan struct{}
	drained    *sync.Cond // on mu: signalled when leadership is released
	closing    bool       // under mu: Commit fails with ErrClosed
	closeErr   error
	closeOnce  sync.Once

	lastInboxSeq atomic.Uint64

	// What ObserveCommits and CommitTime report (observe.go).
	commitNanos atomic.Int64 // time spent in successful store commits (the fsync in sync mode)
	onCommit    atomic.Pointer[func(took time.Duration, batches int)]

	// Fencing (see ownership.go). own is nil for a partition of a hub
	// opened with Open: its commit path then never reads a file.
	own       *ownership
	fenced    atomic.Bool   // set once fenceErr is
	fenceErr  error         // why, wrapping ErrFenced; written before fenced is set
	fencedCh  chan struct{} // closed when fenced
	fenceOnce sync.Once
	closedCh  chan struct{} // closed when close has finished

	batches      atomic.Uint64
	transactions atomic.Uint64
	syncs        atomic.Uint64 // periodic syncs of a NoSync partition

	fault func(partition int) error // Options.CommitFault

	// The free-space reserve (space.go): minFree 0 means none.
	minFree     int64
	spaceMu     sync.Mutex // serializes checkSpace (the loop and the leader)
	lowSpace    atomic.Bool
	freeAtCheck atomic.Int64 // free bytes at the last check
	sinceCheck  atomic.Int64 // bytes of keys and values committed since
	spaceStop   chan struct{}
	spaceDone   chan struct{}

	// The periodic sync of a NoSync partition (nosync.go); nil otherwise.
	syncStop chan struct{}
	syncDone chan struct{}
}

// CommitStats counts a partition's commits since it was opened.
type CommitStats struct {
	Batches      uint64 // batches committed successfully
	Transactions uint64 // Badger transactions committed successfully (each holds one or more batches)
	// Syncs counts the periodic syncs of the log of a NoSync partition
	// (Options.NoSyncInterval); 0 in sync mode, where every transaction is
	// synced.
	Syncs uint64
}

// pending is one Commit or CommitAsync call waiting in the group-commit
// queue.
type pending struct {
	b       *Batch
	done    chan result     // Commit: buffered(1): leadership grant, then the result
	fn      func(err error) // CommitAsync: called with the result (done is nil)
	err     error           // CommitAsync: the result, for fn (leader only)
	granted bool            // under mu: leadership was handed to this caller
	taken   bool            // under mu: a leader took the batch
	sent    bool            // the leader delivered the result (leader only)
}

type result struct {
	err  error
	lead bool // you are now the leader
}

// syncEvery > 0 (a NoSync partition on disk) starts its periodic sync;
// minFree > 0 (on disk) keeps that free-space reserve.
func openPartition(i int, dir string, noSync bool, syncEvery time.Duration, minFree int64, log *slog.Logger) (*Partition, error) {
	where := dir
	if where == "" {
		where = "memory"
	}
	if dir != "" {
		if err := removeEmptyLogFiles(dir, log); err != nil {
			return nil, fmt.Errorf("open partition %d at %s: %w", i, where, err)
		}
	}
	db, err := badger.Open(badgerOptions(dir, noSync, log, i))
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("open partition %d at %s: %w: %w", i, where, ErrLocked, err)
		}
		return nil, fmt.Errorf("open partition %d at %s: %w", i, where, err)
	}
	p := &Partition{
		index:    i,
		dir:      dir,
		db:       db,
		log:      log,
		maxCount: db.MaxBatchCount() / 2,
		maxSize:  db.MaxBatchSize() / 2,
		fencedCh: make(chan struct{}),
		closedCh: make(chan struct{}),

		kick:          make(chan struct{}, 1),
		committerDone: make(chan struct{}),
		notify:        make(chan []*pending, notifyBacklog),
		notifyDone:    make(chan struct{}),
	}
	p.drained = sync.NewCond(&p.mu)
	maxSeq, err := p.maxInboxSeq()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open partition %d at %s: scan inbox: %w", i, where, err)
	}
	go p.committer()
	go p.notifier()
	p.lastInboxSeq.Store(max(maxSeq, uint64(time.Now().UnixNano())))
	if syncEvery > 0 {
		p.syncStop, p.syncDone = make(chan struct{}), make(chan struct{})
		go p.syncLoop(syncEvery, p.syncStop, p.syncDone)
	}
	if minFree > 0 && dir != "" {
		p.minFree = minFree
		p.checkSpace()
		p.spaceStop, p.spaceDone = make(chan struct{}), make(chan struct{})
		go p.spaceLoop(p.spaceStop, p.spaceDone)
	}
	return p, nil
}

// where names the partition's directory for errors ("memory" in memory).
func (p *Partition) where() string {
	if p.dir == "" {
		return "memory"
	}
	return p.dir
}

// Index returns the partition's number in its hub.
func (p *Partition) Index() int { return p.index }

// Stats returns the partition's commit counters. Batches/Transactions is
// the mean number of batches merged per transaction (per fsync).
func (p *Partition) Stats() CommitStats {
	return CommitStats{Batches: p.batches.Load(), Transactions: p.transactions.Load(), Syncs: p.syncs.Load()}
}

// NextInboxSeq returns a sequence number for PutInbox, strictly greater than
// every number returned before in this process and, as long as the clock does
// not go back, across restarts: next = max(last+1, now in unix nanos), where
// last starts at the greatest seq stored under m/ when the partition opens.
func (p *Partition) NextInboxSeq() uint64 {
	for {
		last := p.lastInboxSeq.Load()
		next := max(last+1, uint64(time.Now().UnixNano()))
		if p.lastInboxSeq.CompareAndSwap(last, next) {
			return next
		}
	}
}

// Commit applies b atomically (one Badger transaction) and returns once that
// transaction has committed, durably unless Options.NoSync. Concurrent
// Commits on a partition are merged into one transaction (group commit):
// the first caller becomes the leader, takes the queued batches in arrival
// order, up to half of Badger's transaction limits, applies them in one
// transaction and reports the result to each caller; then it hands
// leadership to the next queued caller. A failed transaction fails every
// batch in it; a batch whose own operations fail is left out and the others
// are retried, so no batch is ever applied partially.
//
// If ctx is done before a leader takes the batch, the batch is withdrawn
// and ctx.Err() returned; once taken, Commit waits for the outcome. A batch
// that alone exceeds the transaction limits fails with ErrBatchTooLarge and
// writes nothing. After Close, Commit returns ErrClosed. An empty batch
// commits nothing and returns nil.
//
// On a partition opened by Claim, every transaction is preceded by a read
// of the partition's ownership record; once another owner has claimed the
// partition, Commit fails with an error wrapping ErrFenced (not ErrClosed)
// and writes nothing (see ownership.go).
func (p *Partition) Commit(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.checkSize(b); err != nil {
		return err
	}
	pb := &pending{b: b, done: make(chan result, 1)}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return p.closedError()
	}
	if b.Empty() {
		p.mu.Unlock()
		return nil
	}
	p.queue = append(p.queue, pb)
	if !p.leading {
		// Invariant: no leader ⇒ the queue was empty, so pb is at its head.
		p.leading = true
		p.mu.Unlock()
		return p.lead(pb)
	}
	p.mu.Unlock()

	select {
	case r := <-pb.done:
		if r.lead {
			return p.lead(pb)
		}
		return r.err
	case <-ctx.Done():
		p.mu.Lock()
		if !pb.taken && !pb.granted {
			for i, q := range p.queue {
				if q == pb {
					p.queue = append(p.queue[:i], p.queue[i+1:]...)
					break
				}
			}
			p.mu.Unlock()
			return ctx.Err()
		}
		p.mu.Unlock()
		r := <-pb.done
		if r.lead {
			return p.lead(pb)
		}
		return r.err
	}
}

// CommitAsync commits b as Commit does, in the same group commits, but
// returns at once: fn is called with the result once the transaction
// holding b has committed (or failed). fn is called exactly once: on the
// caller's goroutine before CommitAsync returns when b is refused at once
// (too large, the partition closed) or empty; otherwise on the partition's
// notifier goroutine, in commit order, while later transactions commit.
// fn must not block: every later callback of the partition waits for it.
// A caller that waits for its commit should use Commit.
func (p *Partition) CommitAsync(b *Batch, fn func(err error)) {
	if err := p.checkSize(b); err != nil {
		fn(err)
		return
	}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		fn(p.closedError())
		return
	}
	if b.Empty() {
		p.mu.Unlock()
		fn(nil)
		return
	}
	pb := &pending{b: b, fn: fn}
	p.queue = append(p.queue, pb)
	if !p.leading {
		p.leading = true
		pb.granted = true
		p.grantCommitterLocked()
	}
	p.mu.Unlock()
}

// grantCommitterLocked hands leadership to the committer: it went to a
// CommitAsync batch, whose caller does not wait.
func (p *Partition) grantCommitterLocked() { p.kick <- struct{}{} }

// committer leads the rounds granted to it until close closes kick.
func (p *Partition) committer() {
	defer close(p.committerDone)
	for range p.kick {
		p.round()
	}
}

// notifyBacklog bounds the rounds whose callbacks wait for the notifier;
// a leader that finds it full waits (callbacks are quick: this bounds
// memory, should they fall behind).
const notifyBacklog = 64

// notifier calls the callbacks of committed CommitAsync batches, a round
// at a time in commit order, until close closes notify.
func (p *Partition) notifier() {
	defer close(p.notifyDone)
	for callbacks := range p.notify {
		for _, pb := range callbacks {
			pb.fn(pb.err)
		}
	}
}

// checkSize refuses a batch that alone exceeds Badger's transaction limits.
func (p *Partition) checkSize(b *Batch) error {
	if b.estCount >= p.db.MaxBatchCount() || b.estSize >= p.db.MaxBatchSize() {
		return fmt.Errorf("partition %d: %w: about %d entries / %d bytes, limits %d / %d",
			p.index, ErrBatchTooLarge, b.estCount, b.estSize, p.db.MaxBatchCount(), p.db.MaxBatchSize())
	}
	return nil
}

// closedError is what a commit to a closing partition fails with: the
// fence error once fenced, ErrClosed otherwise.
func (p *Partition) closedError() error {
	if p.fenced.Load() {
		return fmt.Errorf("commit: %w", p.fenceErr)
	}
	return fmt.Errorf("commit to partition %d: %w", p.index, ErrClosed)
}

// Idle reports whether no commit is running or queued on the partition: a
// commit started now would run alone, at once. It is a hint; the answer
// may change right after.
func (p *Partition) Idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.leading && len(p.queue) == 0
}

// lead runs one group-commit round as leader, with self at the head of the
// queue, hands leadership on, and returns self's result.
func (p *Partition) lead(self *pending) error {
	p.round()
	return (<-self.done).err
}

// round runs one group-commit round as leader: it commits the batches at
// the head of the queue, answers their Commit callers, hands the results
// of its CommitAsync batches to the notifier, then hands leadership to the
// next queued caller (the committer for a CommitAsync batch) or releases
// it.
func (p *Partition) round() {
	p.mu.Lock()
	group := p.takeGroupLocked()
	p.mu.Unlock()

	p.commitGroup(group)
	if len(p.notified) > 0 {
		p.notify <- p.notified
		p.notified = nil
	}

	p.mu.Lock()
	if len(p.queue) > 0 {
		next := p.queue[0]
		next.granted = true
		if next.fn != nil {
			p.grantCommitterLocked()
		} else {
			next.done <- result{lead: true}
		}
	} else {
		p.leading = false
		p.drained.Broadcast()
	}
	p.mu.Unlock()
}

// takeGroupLocked removes from the head of the queue as many batches as fit
// in one transaction by estimate (at least one).
func (p *Partition) takeGroupLocked() []*pending {
	var count, size, raw int64
	n := 0
	for _, pb := range p.queue {
		if n > 0 && (count+pb.b.estCount > p.maxCount || size+pb.b.estSize > p.maxSize ||
			raw+pb.b.rawSize > maxGroupBytes) {
			break
		}
		count += pb.b.estCount
		size += pb.b.estSize
		raw += pb.b.rawSize
		pb.taken = true
		n++
	}
	group := make([]*pending, n)
	copy(group, p.queue[:n])
	rest := copy(p.queue, p.queue[n:])
	clear(p.queue[rest:])
	p.queue = p.queue[:rest]
	return group
}

// commitGroup commits the batches of group, in order, in as few
// transactions as possible, and delivers every batch's result.
func (p *Partition) commitGroup(group []*pending) {
	all := group
	defer func() {
		// A panic here (a bug, ours or Badger's) must not leave callers
		// waiting forever with leadership stuck: fail what is undelivered.
		if r := recover(); r != nil {
			err := fmt.Errorf("partition %d: panic while committing: %v", p.index, r)
			p.log.Error("group commit panicked", "partition", p.index, "panic", r, "stack", string(debug.Stack()))
			for _, pb := range all {
				p.deliver(pb, err)
			}
		}
	}()
	if p.own != nil && p.fenced.Load() {
		err := fmt.Errorf("commit: %w", p.fenceErr)
		for _, pb := range all {
			p.deliver(pb, err)
		}
		return
	}
	var later []*pending // batches pushed out of an over-full transaction
	for len(group) > 0 {
		txn := p.db.NewTransaction(true)
		failed, err := -1, error(nil)
		for i, pb := range group {
			if err = pb.b.apply(txn); err != nil {
				failed = i
				break
			}
		}
		if failed < 0 {
			var checked time.Time
			if p.own != nil {
				// Fencing: the record must still be ours right before the
				// write. On failure nothing of this group is written.
				checked = time.Now()
				if err := p.checkOwnership(); err != nil {
					txn.Discard()
					err = fmt.Errorf("commit: %w", err)
					for _, pb := range all {
						p.deliver(pb, err)
					}
					return
				}
			}
			if p.fault != nil {
				err = p.fault(p.index)
			}
			if err == nil && p.minFree > 0 {
				var raw int64
				for _, pb := range group {
					raw += pb.b.rawSize
				}
				err = p.reserveSpace(raw)
			}
			began := time.Now()
			if err == nil {
				err = txn.Commit()
			} else {
				txn.Discard()
			}
			took := time.Since(began)
			if p.own != nil {
				p.own.noteCommit(p, checked)
			}
			if err == nil {
				p.transactions.Add(1)
				p.batches.Add(uint64(len(group)))
				p.commitNanos.Add(int64(took))
				if f := p.onCommit.Load(); f != nil {
					(*f)(took, len(group))
				}
			} else {
				err = fmt.Errorf("partition %d at %s: commit: %w: %w", p.index, p.where(), ErrWriteFailed, err)
			}
			for _, pb := range group {
				p.deliver(pb, err)
			}
			group = nil
		} else {
			txn.Discard()
			switch {
			case !errors.Is(err, badger.ErrTxnTooBig):
				// The batch itself is bad: fail it, retry the others.
				p.deliver(group[failed], fmt.Errorf("partition %d: %w", p.index, err))
				group = append(group[:failed:failed], group[failed+1:]...)
			case failed == 0:
				p.deliver(group[0], fmt.Errorf("partition %d: %w: %v", p.index, ErrBatchTooLarge, err))
				group = group[1:]
			default:
				// The estimate was too low: commit the batches that fit,
				// then the rest.
				later = append(group[failed:len(group):len(group)], later...)
				group = group[:failed]
			}
		}
		if len(group) == 0 {
			group, later = later, nil
		}
	}
}

// deliver sends a batch's result to its caller, once: at once to a
// Commit caller; through the notifier, at the end of the round, to a
// CommitAsync callback. The leader calls it.
func (p *Partition) deliver(pb *pending, err error) {
	if pb.sent {
		return
	}
	pb.sent = true
	if pb.fn != nil {
		pb.err = err
		p.notified = append(p.notified, pb)
		return
	}
	pb.done <- result{err: err}
}

// close waits for queued commits to finish, stops the ownership watcher if
// any, then closes the database.
func (p *Partition) close() error {
	p.closeOnce.Do(func() {
		defer close(p.closedCh)
		p.mu.Lock()
		p.closing = true
		for p.leading {
			p.drained.Wait()
		}
		p.mu.Unlock()
		// No leader and no new commit: the committer is idle for good,
		// and every callback is with the notifier.
		close(p.kick)
		<-p.committerDone
		close(p.notify)
		<-p.notifyDone

		if p.own != nil {
			p.own.stopWatching()
		}
		if p.syncStop != nil {
			close(p.syncStop)
			<-p.syncDone
		}
		if p.spaceStop != nil {
			close(p.spaceStop)
			<-p.spaceDone
		}

		p.dbMu.Lock()
		p.closed = true
		err := p.db.Close()
		p.dbMu.Unlock()
		if err != nil {
			where := p.dir
			if where == "" {
				where = "memory"
			}
			p.closeErr = fmt.Errorf("close partition %d at %s: %w", p.index, where, err)
		}
	})
	return p.closeErr
}

// view runs fn in a read-only transaction, unless the partition is closed
// or fenced.
func (p *Partition) view(fn func(txn *badger.Txn) error) error {
	p.dbMu.RLock()
	defer p.dbMu.RUnlock()
	if err := p.unusableLocked(); err != nil {
		return err
	}
	return p.db.View(fn)
}

// unusableLocked returns why the database may not be used (fenced, closed),
// or nil. The caller holds dbMu.
func (p *Partition) unusableLocked() error {
	if p.fenced.Load() {
		return p.fenceErr
	}
	if p.closed {
		return fmt.Errorf("partition %d: %w", p.index, ErrClosed)
	}
	return nil
}

// update runs fn in a read-write transaction of its own, outside group
// commit: for maintenance that must not be part of a turn's transaction.
// It is fenced like a commit.
func (p *Partition) update(fn func(txn *badger.Txn) error) error {
	p.dbMu.RLock()
	defer p.dbMu.RUnlock()
	if err := p.unusableLocked(); err != nil {
		return err
	}
	if p.own == nil {
		return p.db.Update(fn)
	}
	txn := p.db.NewTransaction(true)
	defer txn.Discard()
	if err := fn(txn); err != nil {
		return err
	}
	checked := time.Now()
	if err := p.checkOwnership(); err != nil {
		return err
	}
	err := txn.Commit()
	p.own.noteCommit(p, checked)
	return err
}

// DeleteHistoryBelow deletes, in one transaction of its own, up to maxKeys
// history keys of instance id whose generation is below floor, and reports
// whether more remain. It is how the history that a commit dropped by
// raising InstanceRecord.HistoryFloor leaves the disk: any length, in
// transactions that stay within Badger's limits. Deleting keys nothing
// reads any more, it may run next to the instance's own commits.
func (p *Partition) DeleteHistoryBelow(id string, floor uint32, maxKeys int) (more bool, err error) {
	if err := validID(id); err != nil {
		return false, err
	}
	if limit := int(p.db.MaxBatchCount() / 2); maxKeys <= 0 || maxKeys > limit {
		maxKeys = limit
	}
	prefix := historyPrefix(id)
	var keys [][]byte
	err = p.scanKeys(prefix, func(k []byte) error {
		if len(k) < len(prefix)+4 {
			return fmt.Errorf("malformed history key %q", k)
		}
		if binary.BigEndian.Uint32(k[len(prefix):]) >= floor {
			return errStopScan // keys are in generation order
		}
		if len(keys) == maxKeys {
			more = true
			return errStopScan
		}
		keys = append(keys, append([]byte(nil), k...))
		return nil
	})
	if err == nil && len(keys) > 0 {
		err = p.update(func(txn *badger.Txn) error {
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return false, fmt.Errorf("delete history of %q below generation %d: partition %d: %w", id, floor, p.index, err)
	}
	return more, nil
}

// LoadInstance returns the record of instance id, or an error wrapping
// ErrNotFound.
func (p *Partition) LoadInstance(id string) (*InstanceRecord, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var rec *InstanceRecord
	err := p.view(func(txn *badger.Txn) error {
		var err error
		rec, err = loadInstanceTxn(txn, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load instance: partition %d: %w", p.index, err)
	}
	return rec, nil
}

// LoadHistory returns the history events of generation gen of instance id,
// in seq order (empty, not an error, if there are none).
func (p *Partition) LoadHistory(id string, gen uint32) ([][]byte, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var events [][]byte
	err := p.view(func(txn *badger.Txn) error {
		var err error
		events, err = loadHistoryTxn(txn, id, gen)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load history of %q: partition %d: %w", id, p.index, err)
	}
	return events, nil
}

func loadHistoryTxn(txn *badger.Txn, id string, gen uint32) ([][]byte, error) {
	var events [][]byte
	it := txn.NewIterator(badger.IteratorOptions{Prefix: historyGenPrefix(id, gen)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		err := it.Item().Value(func(v []byte) error {
			var err error
			events, err = appendHistoryChunk(events, v)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return events, nil
}

// LoadInstanceAndHistory returns the record of instance id (ErrNotFound if
// none) and, unless it has finished, the history of its current
// generation, read in one transaction: an activation's two reads.
func (p *Partition) LoadInstanceAndHistory(id string) (*InstanceRecord, [][]byte, error) {
	if err := validID(id); err != nil {
		return nil, nil, err
	}
	var (
		rec    *InstanceRecord
		events [][]byte
	)
	err := p.view(func(txn *badger.Txn) error {
		var err error
		if rec, err = loadInstanceTxn(txn, id); err != nil || rec.Status.IsTerminal() {
			return err
		}
		events, err = loadHistoryTxn(txn, id, rec.Generation)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load instance and history of %q: partition %d: %w", id, p.index, err)
	}
	return rec, events, nil
}

// InboxMessage is one undelivered message to an instance.
type InboxMessage struct {
	Seq  uint64
	Data []byte
}

// LoadInbox returns the undelivered messages of instance id in seq order.
func (p *Partition) LoadInbox(id string) ([]InboxMessage, error) {
	return p.loadMessages("inbox", famInbox, id)
}

// loadMessages reads the messages of id under one family of
// fam/<id>\x00<seq> keys (inbox, outbox), in seq order.
func (p *Partition) loadMessages(what, fam, id string) ([]InboxMessage, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var msgs []InboxMessage
	err := p.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: idPrefix(fam, id, 8)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			_, suffix, ok := splitIDKey(item.Key(), fam, 8)
			if !ok {
				return fmt.Errorf("malformed %s key %q", what, item.Key())
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			msgs = append(msgs, InboxMessage{Seq: binary.BigEndian.Uint64(suffix), Data: v})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %s of %q: partition %d: %w", what, id, p.index, err)
	}
	return msgs, nil
}

// PendingActivities returns the task numbers of instance id's entries in
// the pending-work index, ascending: empty if it has no activity or
// sub-orchestration open. (An instance with FlagPendingWork has one entry
// for all of them; see Batch.PutPendingWork.)
func (p *Partition) PendingActivities(id string) ([]uint64, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var tasks []uint64
	err := p.scanKeys(activityPrefix(id), func(k []byte) error {
		_, suffix, ok := splitIDKey(k, famActivity, 8)
		if !ok {
			return fmt.Errorf("malformed pending activity key %q", k)
		}
		tasks = append(tasks, binary.BigEndian.Uint64(suffix))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending activities of %q: partition %d: %w", id, p.index, err)
	}
	return tasks, nil
}

// InstancesWithWork returns, sorted, the distinct ids that have a pending
// activity (a/), an undelivered message (m/) or an unacknowledged outbox
// message (o/): the instances and entities recovery must
// reactivate. It reads only those two indexes, never the instance records.
func (p *Partition) InstancesWithWork() ([]string, error) {
	seen := make(map[string]struct{})
	for _, fam := range []string{famActivity, famInbox, famOutbox} {
		var last string
		err := p.scanKeys([]byte(fam), func(k []byte) error {
			id, _, ok := splitIDKey(k, fam, 8)
			if !ok {
				return fmt.Errorf("malformed key %q", k)
			}
			if id != last { // keys of one id are adjacent
				seen[id] = struct{}{}
				last = id
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("instances with work: partition %d: %w", p.index, err)
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// ListByStatus returns up to limit ids (all if limit <= 0) of instances with
// status st, in ascending id order, starting strictly after the id after
// ("" = from the start). It reads the status index only.
func (p *Partition) ListByStatus(st Status, after string, limit int) ([]string, error) {
	prefix := statusPrefix(st)
	var ids []string
	err := p.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		start := append(statusPrefix(st), after...)
		for it.Seek(start); it.Valid(); it.Next() {
			id := string(it.Item().Key()[len(prefix):])
			if id == after {
				continue
			}
			ids = append(ids, id)
			if limit > 0 && len(ids) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list by status %s: partition %d: %w", st, p.index, err)
	}
	return ids, nil
}

// RunValueLogGC rewrites at most one value log file whose discardable
// fraction is at least discardRatio (Badger's DB.RunValueLogGC). Badger never
// reclaims value log space by itself and this package runs no goroutines, so
// the owner of the partition should call it periodically (e.g. every few
// minutes, with 0.5, repeating while it returns nil). It returns nil if a
// file was rewritten and an error wrapping badger.ErrNoRewrite if none was
// worth it. On a claimed partition it first checks the ownership record,
// like a commit, and fails with ErrFenced once the partition has moved.
func (p *Partition) RunValueLogGC(discardRatio float64) error {
	p.dbMu.RLock()
	defer p.dbMu.RUnlock()
	if err := p.unusableLocked(); err != nil {
		return err
	}
	if p.dir == "" {
		return badger.ErrNoRewrite // in-memory: no value log
	}
	if p.own != nil {
		if err := p.checkOwnership(); err != nil {
			return err
		}
	}
	return p.db.RunValueLogGC(discardRatio)
}

// errStopScan, returned by a scanKeys callback, ends the scan early; the
// scan then returns nil.
var errStopScan = errors.New("stop scan")

// scanKeys calls fn with every key under prefix (valid only during the
// call), in key order, until fn returns an error.
func (p *Partition) scanKeys(prefix []byte, fn func(k []byte) error) error {
	err := p.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := fn(it.Item().Key()); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		return nil
	}
	return err
}

// maxInboxSeq returns the greatest inbox seq stored in the partition.
func (p *Partition) maxInboxSeq() (uint64, error) {
	var m uint64
	err := p.scanKeys([]byte(famInbox), func(k []byte) error {
		if _, suffix, ok := splitIDKey(k, famInbox, 8); ok {
			m = max(m, binary.BigEndian.Uint64(suffix))
		}
		return nil
	})
	return m, err
}
