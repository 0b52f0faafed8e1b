// Fenced ownership of partitions (cluster mode).
//
// In cluster mode several nodes open one hub directory with OpenShared, on
// storage they all reach, and each partition is written by one owner at a
// time. Who owns partition N is its ownership record, <hub>/partition-NNN.owner,
// beside its Badger directory <hub>/partition-NNN: a small JSON file holding
// the ownership epoch (a uint64), the owner's name and a random claim token.
// The record is only ever replaced whole: a temporary file in the hub
// directory is written and fsynced, renamed over the record, and the hub
// directory is fsynced.
//
// Claim(i, owner) reads the record (epoch e; 0 if there is none), writes
// epoch e+1 with owner and a fresh token, waits Options.FenceGrace (so that
// a commit the old owner started after its last check has finished), then
// opens the Badger directory. While Badger's directory lock is held (by the
// old owner on this host, or by another Hub of this process: ErrLocked) it
// retries every 50ms until ctx ends. Before every attempt, and once more
// after opening, it re-reads the record and gives up with ErrFenced if the
// record is no longer the one it wrote: someone claimed after it. The epoch
// alone does not identify a claim (two claimers that race both write e+1,
// and the later rename wins), so "ours" means the exact bytes this claim
// wrote, token included. If ctx ends after the record was written, the old
// owner is fenced all the same and the partition has no owner until the next
// Claim.
//
// A claimed partition re-reads its record right before every Badger
// transaction it commits: once per group commit (so the read is shared by
// every batch merged into the group), and before its writes outside group
// commit (DeleteHistoryBelow, RunValueLogGC). If the record is gone or is not
// the one its claim wrote, the partition is fenced: the write fails with an
// error wrapping ErrFenced (and not ErrClosed), Fenced() is closed, every
// later commit and read fails with ErrFenced, and the partition closes its
// Badger database once the commits in flight have returned (they fail with
// ErrFenced too), which releases the directory lock. A failure to read the
// record (an I/O error) fails that write without fencing. So that an idle
// partition notices as well, one goroutine per claimed partition re-reads
// the record every Options.FenceCheckInterval when no commit has done so
// meanwhile; it stops when the partition closes. The record is re-opened by
// name on every check: an open file would keep showing the replaced one.
//
// What this assumes of the shared filesystem and of the nodes:
//
//   - Rename is atomic: a reader of the record sees the old one or the new
//     one, whole, never a mix or nothing.
//   - Read-after-write visibility across nodes: a read of the record that
//     begins after a rename of it has returned on another node sees the new
//     record. (On NFS: close-to-open consistency, i.e. not mounted with
//     nocto; every check opens the file anew.)
//   - A commit that passed its check finishes within FenceGrace. The check
//     and the write are two steps; a write delayed between them by more
//     than FenceGrace (a stalled fsync, a paused process or VM, a long
//     stop-the-world) can land after the new owner has opened the
//     directory. A commit that took longer than FenceGrace after its check
//     is logged at Error level, as a possible breach.
//   - Badger's directory lock (flock) is only a same-host guarantee: on one
//     host, two processes or two Hubs never open one partition together,
//     whatever the timing. Across hosts the filesystem may not honour it,
//     and then only the grace keeps an old owner and a new one apart. Note
//     that an old owner's Badger also writes by itself (compactions, and the
//     memtable flush when it closes) until it has learned it is fenced and
//     has closed: across hosts without a shared lock that must also happen
//     within FenceGrace, i.e. FenceGrace must exceed FenceCheckInterval plus
//     one read of the record plus the old owner's Badger close. The
//     defaults (500ms and 250ms) leave ~250ms for that close, which is
//     enough for a small memtable on local-class storage, not a guarantee.
//
// Every wait is measured on one node's monotonic clock; clocks of
// different nodes are never compared. A hub opened with Open has no
// records: its partitions never read one and its commit path is unchanged.

package persistence

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ErrFenced: the partition's ownership moved to another owner; its commits
// are refused. It does not wrap ErrClosed, though a fenced partition also
// closes: a caller can tell "moved away" from "shut down".
var ErrFenced = errors.New("partition ownership moved to another owner")

// DefaultClusterPartitions is the partition count of a new hub opened with
// OpenShared and Partitions == 0.
const DefaultClusterPartitions = 12

// claimRetry is how often Claim retries opening a partition whose directory
// is still locked by its previous owner.
const claimRetry = 50 * time.Millisecond

// ownerFormat is the "format" of the ownership records this package writes.
const ownerFormat = 1

// maxOwnerLen bounds the owner name of Claim.
const maxOwnerLen = 1024

var (
	errNotShared             = errors.New("the hub was opened with Open, not OpenShared")
	errReleasedWhileClaiming = fmt.Errorf("released while being claimed: %w", ErrClosed)
	errClosedWhileClaiming   = fmt.Errorf("hub closed while claiming: %w", ErrClosed)
)

// ownerRecord is the content of a partition's ownership record.
type ownerRecord struct {
	Format int    `json:"format"`
	Epoch  uint64 `json:"epoch"`
	Owner  string `json:"owner"`
	Claim  string `json:"claim"` // random token of the claim that wrote it
}

func ownerRecordName(i int) string { return partitionDirName(i) + ".owner" }

// readOwnerRecord reads the ownership record at path. A missing record is
// the zero record and nil data; an unreadable or corrupt one is an error
// naming path.
func readOwnerRecord(path string) (ownerRecord, []byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ownerRecord{}, nil, nil
	}
	if err != nil {
		return ownerRecord{}, nil, fmt.Errorf("read ownership record %s: %w", path, err)
	}
	rec, err := parseOwnerRecord(data)
	if err != nil {
		return ownerRecord{}, nil, fmt.Errorf("read ownership record %s: %w", path, err)
	}
	return rec, data, nil
}

func parseOwnerRecord(data []byte) (ownerRecord, error) {
	var rec ownerRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("corrupt: %w", err)
	}
	if rec.Format != ownerFormat {
		return rec, fmt.Errorf("unsupported format %d (want %d)", rec.Format, ownerFormat)
	}
	if rec.Epoch == 0 || rec.Owner == "" || rec.Claim == "" {
		return rec, fmt.Errorf("corrupt: epoch %d, owner %q, claim %q", rec.Epoch, rec.Owner, rec.Claim)
	}
	return rec, nil
}

// describeRecord says, for an error message, what the record at path holds
// now instead of ours.
func describeRecord(path string, data []byte) string {
	if data == nil {
		return path + " was removed"
	}
	rec, err := parseOwnerRecord(data)
	if err != nil {
		return fmt.Sprintf("%s holds an unreadable record (%v)", path, err)
	}
	return fmt.Sprintf("%s now holds epoch %d of %q", path, rec.Epoch, rec.Owner)
}

// ownership is what a claimed partition knows of its claim. Its fields are
// set before the partition is published and never change, but lastCheck.
type ownership struct {
	path     string // the ownership record
	record   []byte // what this claim wrote there
	epoch    uint64
	owner    string
	grace    time.Duration
	interval time.Duration

	start     time.Time    // base of lastCheck (monotonic)
	lastCheck atomic.Int64 // time.Since(start) at the last check that found the record ours

	stop     chan struct{} // closed to stop the watcher
	done     chan struct{} // closed when the watcher has returned
	stopOnce sync.Once
}

func (o *ownership) stopWatching() {
	o.stopOnce.Do(func() { close(o.stop) })
	<-o.done
}

// noteCommit logs a write that ended more than FenceGrace after the
// ownership check that allowed it: the assumption the fence rests on was
// broken, and a new owner may have opened the partition meanwhile.
func (o *ownership) noteCommit(p *Partition, checked time.Time) {
	if d := time.Since(checked); d > o.grace {
		p.log.Error("a write finished later than FenceGrace after its ownership check; if the partition moved meanwhile, fencing may have been breached",
			"partition", p.index, "dir", p.dir, "epoch", o.epoch, "took", d, "fence_grace", o.grace)
	}
}

// checkOwnership re-reads the ownership record of a claimed partition. It
// returns nil if the record is still the one its claim wrote; otherwise it
// fences the partition and returns the error wrapping ErrFenced. An I/O
// error reading the record is returned as is, without fencing.
func (p *Partition) checkOwnership() error {
	if p.fenced.Load() {
		return p.fenceErr
	}
	o := p.own
	data, err := os.ReadFile(o.path)
	switch {
	case err == nil && bytes.Equal(data, o.record):
		o.lastCheck.Store(int64(time.Since(o.start)))
		return nil
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		data = nil
	default:
		return fmt.Errorf("partition %d at %s: check ownership record: %w", p.index, p.dir, err)
	}
	return p.fence(describeRecord(o.path, data))
}

// fence marks the partition as fenced (why: what the record holds now),
// refuses new commits, closes Fenced(), and closes the partition in the
// background once its commits in flight have returned. It returns the
// partition's fence error.
func (p *Partition) fence(why string) error {
	p.fenceOnce.Do(func() {
		o := p.own
		p.fenceErr = fmt.Errorf("partition %d (epoch %d of %q) at %s: %w: %s",
			p.index, o.epoch, o.owner, p.dir, ErrFenced, why)
		p.fenced.Store(true)
		p.mu.Lock()
		p.closing = true
		p.mu.Unlock()
		close(p.fencedCh)
		p.log.Warn("partition fenced: another owner claimed it; it stops writing and closes",
			"partition", p.index, "dir", p.dir, "epoch", o.epoch, "owner", o.owner, "now", why)
		// Not inline: the caller may be the group-commit leader, which close
		// waits for.
		go func() {
			if err := p.close(); err != nil {
				p.log.Error("close fenced partition", "partition", p.index, "err", err)
			}
		}()
	})
	return p.fenceErr
}

// watch re-reads the ownership record every FenceCheckInterval, unless a
// commit did within the last interval, until the partition is fenced or
// closed.
func (p *Partition) watch() {
	o := p.own
	defer close(o.done)
	t := time.NewTicker(o.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
		}
		if p.fenced.Load() {
			return
		}
		if time.Since(o.start)-time.Duration(o.lastCheck.Load()) < o.interval {
			continue
		}
		err := p.checkOwnership()
		switch {
		case errors.Is(err, ErrFenced):
			return
		case err != nil:
			if !failing {
				p.log.Warn("cannot read the partition's ownership record; its commits fail until it can", "partition", p.index, "err", err)
				failing = true
			}
		case failing:
			p.log.Info("the partition's ownership record is readable again", "partition", p.index)
			failing = false
		}
	}
}

// Fenced is closed once the partition has learned that another owner
// claimed it (it then refuses commits with ErrFenced and closes). It is
// never closed for a partition of a hub opened with Open.
func (p *Partition) Fenced() <-chan struct{} { return p.fencedCh }

// Epoch is the ownership epoch this partition was claimed with (0 for a
// hub opened with Open).
func (p *Partition) Epoch() uint64 {
	if p.own == nil {
		return 0
	}
	return p.own.epoch
}

// sharedHub is the partition table of a hub opened with OpenShared.
type sharedHub struct {
	noSync   bool
	syncPer  time.Duration // the periodic sync of NoSync partitions
	fault    func(partition int) error
	minFree  int64
	grace    time.Duration
	interval time.Duration

	mu     sync.Mutex
	closed bool
	slots  []slot
}

// slot is one partition of a shared hub, under sharedHub.mu.
type slot struct {
	p        *Partition              // held (possibly fenced, then closing)
	claiming chan struct{}           // non-nil while a Claim runs; closed when it ends
	cancel   context.CancelCauseFunc // cancels the running Claim
	// released is the record of this hub's last claim of the partition
	// once Release has closed it: a Claim that finds it unchanged needs no
	// grace, as its previous owner is known to be closed.
	released []byte
}

// OpenShared opens a hub whose partitions are opened one at a time by Claim
// (cluster mode): it reads hub.json (or creates it, with opts.Partitions or
// DefaultClusterPartitions) and opens no partition. opts.Dir is required
// (no in-memory shared hub). Several nodes may open one directory, even
// at once: hub.json is created by exactly one of them (by a hard link where
// the filesystem has them), and a Partitions that differs from the
// recorded count fails with ErrPartitionMismatch.
func OpenShared(opts Options) (*Hub, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	switch {
	case opts.Dir == "":
		return nil, errors.New("open shared hub: Options.Dir is required (a shared hub cannot be in memory)")
	case opts.Partitions < 0 || opts.Partitions > maxPartitions:
		return nil, fmt.Errorf("open shared hub %s: Partitions = %d, want 0..%d", opts.Dir, opts.Partitions, maxPartitions)
	case opts.NoSyncInterval < 0:
		return nil, fmt.Errorf("open shared hub %s: NoSyncInterval = %v, want >= 0", opts.Dir, opts.NoSyncInterval)
	case opts.FenceGrace < 0 || opts.FenceCheckInterval < 0:
		return nil, fmt.Errorf("open shared hub %s: FenceGrace = %v, FenceCheckInterval = %v, want >= 0",
			opts.Dir, opts.FenceGrace, opts.FenceCheckInterval)
	}
	n, err := prepareHubDir(opts.Dir, opts.Partitions, DefaultClusterPartitions, true, log)
	if err != nil {
		return nil, err
	}
	s := &sharedHub{
		noSync:   opts.NoSync,
		syncPer:  syncPeriod(opts),
		fault:    opts.CommitFault,
		minFree:  minFree(opts),
		grace:    cmp0(opts.FenceGrace, defaultFenceGrace),
		interval: cmp0(opts.FenceCheckInterval, defaultFenceCheckInterval),
		slots:    make([]slot, n),
	}
	log.Debug("shared hub opened", "dir", opts.Dir, "partitions", n, "sync", !opts.NoSync,
		"fence_grace", s.grace, "fence_check_interval", s.interval)
	return &Hub{dir: opts.Dir, n: n, shared: s, log: log}, nil
}

func cmp0(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// held returns partition i if the hub holds it and it is not fenced.
func (s *sharedHub) held(i int) *Partition {
	if i < 0 || i >= len(s.slots) {
		panic(fmt.Sprintf("persistence: partition %d out of range [0, %d)", i, len(s.slots)))
	}
	s.mu.Lock()
	p := s.slots[i].p
	s.mu.Unlock()
	if p == nil || p.fenced.Load() {
		return nil
	}
	return p
}

// closeAll marks the hub closed, cancels the Claims in progress and waits
// for them, and returns the partitions it held (to be closed), emptying
// their slots.
func (s *sharedHub) closeAll() []*Partition {
	s.mu.Lock()
	s.closed = true
	var waits []chan struct{}
	for i := range s.slots {
		if sl := &s.slots[i]; sl.claiming != nil {
			sl.cancel(errClosedWhileClaiming)
			waits = append(waits, sl.claiming)
		}
	}
	s.mu.Unlock()
	for _, ch := range waits {
		<-ch
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []*Partition
	for i := range s.slots {
		if p := s.slots[i].p; p != nil {
			parts = append(parts, p)
			s.slots[i].p = nil
		}
	}
	return parts
}

// Held reports whether this hub holds partition i open: for a hub opened
// with OpenShared, whether a Claim of it succeeded and it has been neither
// released nor fenced since; for one opened with Open, whether the hub is
// open. It is false for an i out of range.
func (h *Hub) Held(i int) bool {
	if i < 0 || i >= h.n {
		return false
	}
	if h.shared == nil {
		return !h.closed.Load()
	}
	return h.shared.held(i) != nil
}

// Claim makes owner the owner of partition i and opens it, in a hub opened
// with OpenShared: it writes the next ownership epoch with owner to the
// partition's ownership record, waits Options.FenceGrace, and opens the
// partition's store, waiting (retrying every 50ms) while its previous owner
// still holds it; see ownership.go for the whole protocol. The returned
// partition is Partition(i) until it is released or fenced.
//
// Claim returns an error wrapping ErrFenced if another owner claimed the
// partition after this call wrote its epoch; ctx's error (wrapped) if ctx
// ends first, e.g. while the previous owner keeps the directory; an error
// wrapping ErrClosed if the hub is closed, or Release(i) is called, while
// it runs. On error it leaves nothing open (the epoch it wrote, if any,
// stays: the previous owner is fenced regardless). A ctx already done
// returns at once and writes nothing. A store that cannot be opened other
// than for another owner's lock (damaged files) fails with an error
// wrapping ErrPartitionDown, and the partition is in Down (and DownError)
// until a Claim of it succeeds or Release(i) is called.
//
// If this hub already holds partition i for the same owner and the record
// is still its own, Claim returns that partition unchanged (same epoch). If
// the held partition has lost its ownership meanwhile, Claim fences it,
// waits for it to close, and claims anew. Holding it for another owner name
// is an error. Concurrent Claims of one partition on one hub run one after
// the other.
func (h *Hub) Claim(ctx context.Context, i int, owner string) (*Partition, error) {
	s := h.shared
	switch {
	case s == nil:
		return nil, fmt.Errorf("claim partition %d: %w", i, errNotShared)
	case i < 0 || i >= h.n:
		return nil, fmt.Errorf("claim partition %d of hub %s: out of range [0, %d)", i, h.dir, h.n)
	case owner == "" || len(owner) > maxOwnerLen || !utf8.ValidString(owner):
		return nil, fmt.Errorf("claim partition %d of hub %s: owner %q: want 1..%d bytes of UTF-8", i, h.dir, owner, maxOwnerLen)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("claim partition %d of hub %s: %w", i, h.dir, err)
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, fmt.Errorf("claim partition %d of hub %s: %w", i, h.dir, ErrClosed)
		}
		sl := &s.slots[i]
		if ch := sl.claiming; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("claim partition %d of hub %s: %w", i, h.dir, ctx.Err())
			}
		}
		if p := sl.p; p != nil {
			s.mu.Unlock()
			if !p.fenced.Load() {
				if p.own.owner != owner {
					return nil, fmt.Errorf("claim partition %d of hub %s for %q: this hub holds it for %q",
						i, h.dir, owner, p.own.owner)
				}
				err := p.checkOwnership()
				if err == nil {
					return p, nil
				}
				if !errors.Is(err, ErrFenced) {
					return nil, fmt.Errorf("claim partition %d: %w", i, err)
				}
			}
			// Fenced: it is closing; claim anew once it has closed.
			select {
			case <-p.closedCh:
			case <-ctx.Done():
				return nil, fmt.Errorf("claim partition %d of hub %s: %w", i, h.dir, ctx.Err())
			}
			s.mu.Lock()
			if sl.p == p {
				sl.p = nil
			}
			s.mu.Unlock()
			continue
		}
		cctx, cancel := context.WithCancelCause(ctx)
		ch := make(chan struct{})
		sl.claiming, sl.cancel = ch, cancel
		released := sl.released
		s.mu.Unlock()

		p, err := s.claim(cctx, h, i, owner, released)
		cancel(nil)

		s.mu.Lock()
		sl.claiming, sl.cancel = nil, nil
		close(ch)
		closed := s.closed
		if err == nil && !closed {
			sl.p = p
		}
		s.mu.Unlock()
		if err == nil && closed {
			if cerr := p.close(); cerr != nil {
				h.log.Error("close partition claimed while the hub closed", "partition", i, "err", cerr)
			}
			return nil, fmt.Errorf("claim partition %d of hub %s: %w", i, h.dir, errClosedWhileClaiming)
		}
		return p, err
	}
}

// claim runs one claim of partition i (see Claim). released is the record
// of this hub's last claim of i if Release closed it since.
func (s *sharedHub) claim(ctx context.Context, h *Hub, i int, owner string, released []byte) (*Partition, error) {
	dir := filepath.Join(h.dir, partitionDirName(i))
	path := filepath.Join(h.dir, ownerRecordName(i))
	cur, prev, err := readOwnerRecord(path)
	if err != nil {
		return nil, fmt.Errorf("claim partition %d: %w", i, err)
	}
	if cur.Epoch == math.MaxUint64 {
		return nil, fmt.Errorf("claim partition %d: ownership record %s: epoch exhausted", i, path)
	}
	rec := ownerRecord{Format: ownerFormat, Epoch: cur.Epoch + 1, Owner: owner, Claim: rand.Text()}
	mine, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("claim partition %d: %w", i, err)
	}
	mine = append(mine, '\n')
	if _, err := writeFileAtomic(h.dir, path, ownerRecordName(i), mine, false, h.log); err != nil {
		return nil, fmt.Errorf("claim partition %d: write ownership record: %w", i, err)
	}
	h.log.Debug("ownership epoch written", "partition", i, "epoch", rec.Epoch, "owner", owner,
		"previous_epoch", cur.Epoch, "previous_owner", cur.Owner)
	fail := func(err error) error {
		return fmt.Errorf("claim partition %d at %s (epoch %d written to %s): %w", i, dir, rec.Epoch, path, err)
	}

	// Our own previous claim, closed by Release: no commit of it can be in
	// flight, so there is nothing to wait for.
	grace := s.grace
	if released != nil && bytes.Equal(prev, released) {
		grace = 0
	}
	if grace > 0 {
		t := time.NewTimer(grace)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fail(context.Cause(ctx))
		case <-t.C:
		}
	}

	stillMine := func() error {
		data, err := os.ReadFile(path)
		switch {
		case err == nil && bytes.Equal(data, mine):
			return nil
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			data = nil
		default:
			return fmt.Errorf("re-read ownership record: %w", err)
		}
		return fmt.Errorf("%w: %s", ErrFenced, describeRecord(path, data))
	}
	var locked error
	for {
		if err := stillMine(); err != nil {
			return nil, fail(err)
		}
		p, err := openPartition(i, dir, s.noSync, s.syncPer, s.minFree, h.log)
		if err == nil {
			p.fault = s.fault
			if err := stillMine(); err != nil {
				if cerr := p.close(); cerr != nil {
					h.log.Error("close partition after a lost claim", "partition", i, "err", cerr)
				}
				return nil, fail(err)
			}
			p.own = &ownership{
				path: path, record: mine, epoch: rec.Epoch, owner: owner,
				grace: s.grace, interval: s.interval, start: time.Now(),
				stop: make(chan struct{}), done: make(chan struct{}),
			}
			go p.watch()
			h.setDown(i, "", nil)
			h.log.Info("partition claimed", "partition", i, "dir", dir, "epoch", rec.Epoch, "owner", owner)
			return p, nil
		}
		if !errors.Is(err, ErrLocked) {
			// Not another owner's lock: the store itself cannot be
			// opened (damaged files). Recorded as down until a claim
			// succeeds or the partition is released.
			h.log.Error("partition is down: its store cannot be opened", "partition", i, "dir", dir, "err", err)
			h.setDown(i, dir, err)
			return nil, fail(fmt.Errorf("%w: %w", ErrPartitionDown, err))
		}
		if locked == nil {
			h.log.Debug("waiting for the previous owner to close the partition", "partition", i, "dir", dir)
		}
		locked = err
		t := time.NewTimer(claimRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fail(fmt.Errorf("%w (the directory was still locked: %v)", context.Cause(ctx), locked))
		case <-t.C:
		}
	}
}

// Release closes partition i if this hub holds it (after its in-flight
// commits); a no-op otherwise. A Claim of i in progress on this hub is
// canceled (it fails with ErrClosed) and waited for. Releasing does not
// touch the ownership record: the next owner's Claim fences it. The error
// is the partition's close error, if any.
func (h *Hub) Release(i int) error {
	s := h.shared
	switch {
	case s == nil:
		return fmt.Errorf("release partition %d: %w", i, errNotShared)
	case i < 0 || i >= h.n:
		return fmt.Errorf("release partition %d of hub %s: out of range [0, %d)", i, h.dir, h.n)
	}
	h.setDown(i, "", nil)
	s.mu.Lock()
	sl := &s.slots[i]
	if ch := sl.claiming; ch != nil {
		sl.cancel(errReleasedWhileClaiming)
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	p := sl.p
	sl.p = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.close()
	if err == nil && !p.fenced.Load() {
		s.mu.Lock()
		sl.released = p.own.record
		s.mu.Unlock()
	}
	h.log.Debug("partition released", "partition", i, "epoch", p.own.epoch)
	return err
}
