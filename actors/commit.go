package actors

import (
	"context"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/persistence"
)

// inflightCommit is the commit protocol instance and entity actors share.
//
// An actor has at most one batch in flight; what arrives meanwhile waits
// and goes into the next batch. Once the store has made a batch durable,
// durable runs before the actor hears of it (on the partition's notifier
// goroutine, on a goroutine that waited for the commit, or on the actor's
// own for an inline commit; see commitPath): it tells the
// partition's waiters, answers the callers the batch serves and sends the
// messages it made durable, so callers are answered even if the actor
// stops meanwhile, and nothing leaves before it is on disk. durable must
// not block (it holds up the callbacks of the partition's later commits).
// Then the actor hears the result, on its own goroutine: as a commitResult
// message, or at once when the commit ran inline.
type inflightCommit struct {
	committing bool
	// running is held while a commit runs, from begin until the store has
	// returned and durable has run (unlocked where durable ran;
	// a lock per actor, where a channel per commit would cost an
	// allocation each time).
	running sync.Mutex
}

// commitPath says how an actor's commit reaches the store.
type commitPath int

const (
	// commitInlineOrQueued: with nothing else committing on the partition,
	// the commit runs alone and at once on the actor's goroutine (it saves
	// a mailbox trip on the latency path of a lone instance, W3: +23%
	// steps/s). Otherwise the batch joins the partition's queue
	// (persistence.Partition.CommitAsync) and nothing waits for it; the
	// partition's notifier runs durable. Instances commit so: no goroutine
	// per commit (W1 at 20,000 instances 1.07×, CPU 0.88× per instance,
	// 6 interleaved rounds; W5 level, its p99 latency 74 to 99 ms).
	commitInlineOrQueued commitPath = iota
	// commitWaited: a goroutine of its own waits in persistence.Partition.Commit
	// and runs durable. Entities commit so: their callers wait for durable's
	// answer, and behind the one notifier of a partition those answers
	// came late (W6's p99 latency doubled, 15 to 35 ms, for no gain in
	// throughput).
	commitWaited
)

// begin commits b on store by path. Where concurrent commits of the
// partition can join it, they batch into one transaction. A commit that
// ran inline returns its result and true; otherwise the result comes back
// as a commitResult message. kind and id name the actor in an error.
func (c *inflightCommit) begin(ctx actor.Context, store *persistence.Partition, b *persistence.Batch, kind, id string, durable func(err error), path commitPath) (error, bool) {
	c.committing = true
	c.running.Lock() // free: the previous commit unlocked it before the actor heard of its end
	finish := func(err error) error {
		if err != nil {
			err = storeError("commit "+kind+" "+id, err)
		}
		durable(err)
		c.running.Unlock()
		return err
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	switch {
	case path == commitWaited:
		go func() { root.Send(self, &commitResult{err: finish(store.Commit(context.Background(), b))}) }()
	case store.Idle():
		return finish(store.Commit(context.Background(), b)), true
	default:
		store.CommitAsync(b, func(err error) { root.Send(self, &commitResult{err: finish(err)}) })
	}
	return nil, false
}

// end marks the in-flight commit as returned; false if none was in flight
// (a stale commitResult).
func (c *inflightCommit) end() bool {
	if !c.committing {
		return false
	}
	c.committing = false
	return true
}

// wait blocks until the in-flight commit, if any, has returned: an actor
// that stops must not let its successor read the store while it still
// writes.
func (c *inflightCommit) wait() {
	if c.committing {
		c.running.Lock()
		c.running.Unlock() // held by nobody now: the commit has ended
		c.committing = false
	}
}
