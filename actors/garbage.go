package actors

import (
	"math"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/persistence"
)

// A commit deletes old histories (continue-as-new, a restart under the same
// id, a rewind) by raising the record's HistoryFloor and setting
// FlagHistoryGarbage, which costs one record write whatever the history's
// length: deleting every key in the turn's transaction would break
// Badger's transaction limit on a long history and wedge the instance. The
// keys below the floor then leave the disk in the background, in bounded
// transactions, and the flag is dropped with the record's next write.

// historyCollector is an instance actor's background removal of dropped
// history.
type historyCollector struct {
	running   bool
	stop      chan struct{} // closed to stop between transactions
	done      chan struct{} // closed when the goroutine returns
	collected uint32        // every key below this generation is gone
}

// historyCollected tells an instance actor that its collector finished.
type historyCollected struct {
	floor uint32
	err   error
}

// dropHistoryBelow makes the commit that writes rec delete the histories of
// the generations below gen.
func dropHistoryBelow(rec *persistence.InstanceRecord, gen uint32) {
	rec.HistoryFloor = gen
	rec.Flags |= persistence.FlagHistoryGarbage
}

// collectHistory starts removing the keys below the committed record's
// HistoryFloor, if some may remain and no collector runs.
func (a *instanceActor) collectHistory(ctx actor.Context) {
	rec := a.rec
	if rec == nil || rec.Flags&persistence.FlagHistoryGarbage == 0 || a.gc.running || a.gc.collected >= rec.HistoryFloor {
		return
	}
	floor, store, id := rec.HistoryFloor, a.store, a.id
	self, root := ctx.Self(), ctx.ActorSystem().Root
	stop, done := make(chan struct{}), make(chan struct{})
	a.gc = historyCollector{running: true, stop: stop, done: done, collected: a.gc.collected}
	go func() {
		defer close(done)
		var err error
		for more := true; more && err == nil; {
			select {
			case <-stop:
				return
			default:
			}
			more, err = store.DeleteHistoryBelow(id, floor, 0)
		}
		root.Send(self, &historyCollected{floor: floor, err: err})
	}()
}

func (a *instanceActor) handleHistoryCollected(ctx actor.Context, msg *historyCollected) {
	a.gc.running = false
	if msg.err != nil {
		// Left for the next activation; nothing reads those keys.
		a.logger().Warn("removing dropped history failed", "below_generation", msg.floor, "err", msg.err)
		return
	}
	a.gc.collected = max(a.gc.collected, msg.floor)
	a.collectHistory(ctx) // the floor may have moved on meanwhile
}

// stopCollecting stops the collector after its current transaction and
// waits for it, so no goroutine outlives the actor.
func (a *instanceActor) stopCollecting() {
	if a.gc.running {
		close(a.gc.stop)
		<-a.gc.done
		a.gc.running = false
	}
}

// settleGarbageFlag drops FlagHistoryGarbage from a record about to be
// written once this actor has removed every key below its floor.
func (a *instanceActor) settleGarbageFlag(rec *persistence.InstanceRecord) {
	if rec.Flags&persistence.FlagHistoryGarbage != 0 && a.gc.collected >= rec.HistoryFloor {
		rec.Flags &^= persistence.FlagHistoryGarbage
	}
}

// purgeHistory deletes every history key of the instance, in bounded
// transactions, before a purge deletes the rest in one.
func (a *instanceActor) purgeHistory() error {
	a.stopCollecting()
	for {
		more, err := a.store.DeleteHistoryBelow(a.id, math.MaxUint32, 0)
		if err != nil || !more {
			return err
		}
	}
}
