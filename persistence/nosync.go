package persistence

import (
	"errors"
	"time"
)

// DefaultNoSyncInterval is Options.NoSyncInterval's default: how often a
// partition of a NoSync hub syncs its write-ahead log.
const DefaultNoSyncInterval = time.Second

// syncPeriod returns how often a partition of a hub opened with opts syncs
// its log by itself: never in sync mode (every commit is synced) or in
// memory (nothing to sync).
func syncPeriod(opts Options) time.Duration {
	if !opts.NoSync || opts.Dir == "" {
		return 0
	}
	return cmp0(opts.NoSyncInterval, DefaultNoSyncInterval)
}

// syncLoop syncs the partition's log every period while commits have
// happened since the last sync, until the partition closes. With
// SyncWrites off, Badger writes its write-ahead log through a memory map
// and nothing else syncs it before the memtable fills and is flushed to a
// table: without this loop, a power cut could lose every commit since the
// hub was opened.
//
// What one sync covers (Badger v4.9.6's DB.Sync): the active memtable's
// WAL and the value log. A memtable that rotated since the last sync (it
// filled: 16 MiB of writes on this partition) is not covered; its writes
// become durable when Badger has flushed it to a level-0 table, which it
// fsyncs together with the manifest, normally within moments of the
// rotation. So the window a power cut can lose is one period, or, for the
// writes of a memtable that rotated inside it, the time until its flush
// (longer only when flushes are stalled behind compaction).
func (p *Partition) syncLoop(period time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(period)
	defer t.Stop()
	var synced uint64 // p.transactions at the last sync
	failing := false
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		n := p.transactions.Load()
		if n == synced {
			continue
		}
		err := p.sync()
		switch {
		case errors.Is(err, ErrClosed), errors.Is(err, ErrFenced):
			return // close stops the loop; nothing more will be written
		case err == nil:
			synced = n
			p.syncs.Add(1)
			if failing {
				p.log.Info("the partition's log syncs again", "partition", p.index)
				failing = false
			}
		case !failing:
			p.log.Error("cannot sync the partition's log; its recent commits would not survive a power cut", "partition", p.index, "dir", p.dir, "err", err)
			failing = true
		}
	}
}

// sync syncs the partition's log, unless it is closed.
func (p *Partition) sync() error {
	p.dbMu.RLock()
	defer p.dbMu.RUnlock()
	if err := p.unusableLocked(); err != nil {
		return err
	}
	return p.db.Sync()
}
