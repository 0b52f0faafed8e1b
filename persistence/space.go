package persistence

import (
	"fmt"
	"time"
)

// DefaultMinFreeBytes is Options.MinFreeBytes's default.
const DefaultMinFreeBytes = 64 << 20

// spaceCheckInterval is how often a partition on disk checks the free
// space of its filesystem.
const spaceCheckInterval = 250 * time.Millisecond

// Why a reserve: Badger v4.9.6 writes its logs through memory maps of
// preallocated sparse files, so on a full filesystem a write does not fail
// with an error: the page fault raises SIGBUS and the process dies
// (measured on a full tmpfs; nothing acknowledged was lost, a restart with
// space finished every instance). Refusing commits while the free space is
// below a reserve turns that crash into failed writes (ErrWriteFailed,
// which callers see as unavailable and retry), and the partition writes
// again by itself once space is back.

// freeBytesOf is freeBytes; tests replace it.
var freeBytesOf = freeBytes

// checkSpace updates the partition's low-space flag from its filesystem's
// free space, logging each change.
func (p *Partition) checkSpace() {
	free, err := freeBytesOf(p.dir)
	if err != nil {
		return // unknown: leave the flag as it is
	}
	low := free < p.minFree
	if low == p.lowSpace.Load() {
		return
	}
	p.lowSpace.Store(low)
	p.freeAtCheck.Store(free)
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

// spaceError is the error of a commit refused for lack of space, or nil.
func (p *Partition) spaceError() error {
	if !p.lowSpace.Load() {
		return nil
	}
	return fmt.Errorf("%d bytes free on the filesystem of %s, below the reserve of %d (Options.MinFreeBytes)", p.freeAtCheck.Load(), p.dir, p.minFree)
}
