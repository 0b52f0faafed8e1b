package durable

import (
	"runtime"
	"time"
)

// NodeStats is the health of a running node, in more detail than Stats:
// what a dashboard or an operator looks at to see whether the node keeps
// up. Counters are cumulative since Open; a reader that wants rates takes
// the difference of two snapshots.
type NodeStats struct {
	// Ready reports whether the node serves requests (Runtime.Ready).
	Ready bool
	// Partitions is the task hub's partition count, Hosted the partitions
	// this node serves (all of them on a single node).
	Partitions int
	Hosted     []int
	// Actors counts the actor system's processes (Stats.Actors).
	Actors int
	// InMemory counts the instance and entity actors in memory
	// (Stats.InMemory), MaxInMemory its bound (0: none; see
	// Options.MaxActorsInMemory).
	InMemory, MaxInMemory int
	// ActivitiesRunning counts activities holding one of the node's
	// ActivitySlots; ActivitiesWaiting the instances waiting for a slot.
	ActivitiesRunning, ActivitySlots, ActivitiesWaiting int
	// Commits and Transactions are Stats' counters; CommitTime is the time
	// the hosted partitions spent committing those transactions (their
	// fsync in sync mode), so CommitTime/Transactions is the mean latency.
	Commits, Transactions int64
	CommitTime            time.Duration
	// Goroutines and HeapBytes describe the Go process.
	Goroutines int
	HeapBytes  uint64
	// Uptime is the time since Open.
	Uptime time.Duration
	// PartitionsDown lists the partitions whose store could not be opened
	// (garbage or truncated files): they serve nothing, every request for
	// their ids fails with ErrPartitionDown, and they are missing from
	// Hosted. Empty on a healthy node. A whole node that cannot open any
	// partition does not run at all (Open fails).
	PartitionsDown []PartitionDown
}

// PartitionDown is a partition that is down, in NodeStats.
type PartitionDown struct {
	// Partition is its number, Dir its directory.
	Partition int
	Dir       string
	// Error says why its store could not be opened.
	Error string
}

// NodeStats reports the node's health. It reads counters and the Go
// runtime's heap statistics (runtime.ReadMemStats stops the world
// briefly): call it on demand, not per request.
func (r *Runtime) NodeStats() NodeStats {
	ready := r.Ready()
	r.mu.Lock()
	node, closed := r.node, r.closed
	r.mu.Unlock()
	st := NodeStats{Ready: ready, Partitions: r.hub.Partitions(), Hosted: []int{}, Goroutines: runtime.NumGoroutine(), Uptime: time.Since(r.opened)}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.HeapBytes = ms.HeapAlloc
	st.PartitionsDown = r.PartitionsDown()
	if closed {
		return st
	}
	for i := 0; i < st.Partitions; i++ {
		p := r.hub.Partition(i)
		if p == nil {
			continue // in a cluster, hosted elsewhere
		}
		if node != nil && !node.Hosts(i) {
			continue
		}
		st.Hosted = append(st.Hosted, i)
		c := p.Stats()
		st.Commits += int64(c.Batches)
		st.Transactions += int64(c.Transactions)
		st.CommitTime += p.CommitTime()
	}
	if node != nil {
		st.Actors = node.Actors()
		st.InMemory, st.MaxInMemory = node.InMemory(), node.MaxInMemory()
		a := node.Activities()
		st.ActivitiesRunning, st.ActivitySlots, st.ActivitiesWaiting = a.Running, a.Slots, a.Waiting
	}
	return st
}

// PartitionsDown lists the partitions whose store could not be opened at
// Open (nil when none): cheap, unlike NodeStats, so a health check may call
// it per request.
func (r *Runtime) PartitionsDown() []PartitionDown {
	var down []PartitionDown
	for _, f := range r.hub.Down() {
		down = append(down, PartitionDown{Partition: f.Index, Dir: f.Dir, Error: f.Err.Error()})
	}
	return down
}
