package persistence

import (
	"fmt"
	"time"
)

// DefaultMinFreeBytes is Options.MinFreeBytes's default.
const DefaultMinFreeBytes = 64 << 20

// spaceCheckInterval is how often a partition on disk checks the free
// space of its filesystem.
var spaceCheckInterval = 250 * time.Millisecond

// Why a reserve: Badger v4.9.6 writes its logs through memory maps of
// preallocated sparse files, so on a full filesystem a write does not fail
// with an error: the page fault raises SIGBUS and the process dies
// (measured on a full tmpfs; nothing acknowledged was lost, a restart with
// space finished every instance). Refusing commits while the free space is
// below a reserve turns that crash into failed writes (ErrWriteFailed,
// which callers see as unavailable and retry), and the partition writes
// again by itself once space is back.

//
// A check every spaceCheckInterval alone is not enough: a partition that
// writes fast (large inputs, a tmpfs) can fill more than the reserve
// between two checks, and did (the full-disk test crashed about one run in
// four). So the commit leader also counts the bytes it commits and checks
// again, before the commit, once they exceed a quarter of the reserve since
// the last check: between two statfs calls at most a quarter of the reserve
// plus one group is written, and Badger's write amplification (value log,
// write-ahead log, a flushed table) stays within the rest.

// freeBytesOf is freeBytes; tests replace it.
var freeBytesOf = freeBytes

// checkSpace reads the free space of the partition's filesystem, restarts
// the count of bytes committed since, and updates the low-space flag,
// logging each change.
func (p *Partition) checkSpace() {
	p.spaceMu.Lock()
	defer p.spaceMu.Unlock()
	free, err := freeBytesOf(p.dir)
	if err != nil {
		return // unknown: leave the flag as it is
	}
	p.freeAtCheck.Store(free)
	p.sinceCheck.Store(0)
	low := free < p.minFree
	if low == p.lowSpace.Load() {
		return
	}
	p.lowSpace.Store(low)
	if low {
		p.log.Error("the partition's filesystem is almost full: its commits fail until space is freed",
			"partition", p.index, "dir", p.dir, "free_bytes", free, "reserve_bytes", p.minFree)
	} else {
		p.log.Info("the partition's filesystem has space again: commits go on", "partition", p.index, "free_bytes", free)
	}
}

// spaceLoop checks the free space every spaceCheckInterval until stop.
func (p *Partition) spaceLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(spaceCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.checkSpace()
		}
	}
}

// reserveSpace is called by the commit leader before it commits n bytes
// of keys and values: it checks the filesystem again if the bytes committed
// since the last check and n exceed a quarter of the reserve, or if they
// would take the free space of the last check below the reserve. It returns
// the error of a commit refused for lack of space, or nil and counts n.
func (p *Partition) reserveSpace(n int64) error {
	// belowReserve: the free space of the last check, less what has been
	// committed since and n, is below the reserve.
	belowReserve := func() bool { return p.freeAtCheck.Load()-p.sinceCheck.Load()-n < p.minFree }
	if p.sinceCheck.Load()+n > p.minFree/4 || belowReserve() {
		p.checkSpace()
	}
	if p.lowSpace.Load() || belowReserve() {
		return p.spaceError()
	}
	p.sinceCheck.Add(n)
	return nil
}

// spaceError is the error of a commit refused for lack of space.
func (p *Partition) spaceError() error {
	return fmt.Errorf("%d bytes free on the filesystem of %s, below the reserve of %d (Options.MinFreeBytes)", p.freeAtCheck.Load(), p.dir, p.minFree)
}
