package persistence

import "time"

// CommitTime returns the time the partition's successful store
// transactions took to commit (their fsync in sync mode):
// CommitTime()/Stats().Transactions is the mean latency.
func (p *Partition) CommitTime() time.Duration { return time.Duration(p.commitNanos.Load()) }

// ObserveCommits has f told of every successful store transaction: how
// long its commit took (its fsync in sync mode) and how many batches it
// carried. f runs on the committing goroutine, so it must be quick; nil
// stops the reports.
func (p *Partition) ObserveCommits(f func(took time.Duration, batches int)) {
	if f == nil {
		p.onCommit.Store(nil)
		return
	}
	p.onCommit.Store(&f)
}
