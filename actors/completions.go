package actors

import (
	"slices"
	"sync"

	"github.com/durable-go/durable/persistence"
)

// waiters holds one partition's wait subscriptions: it wakes the callers
// waiting for an instance's end, handing them the final record so they
// need not read it back, and remembers the records of instances that ended
// recently, so that a status read or a wait right after the end is answered
// from memory.
//
// Instance actors report every write and delete of their record (onRecord)
// once it is durable and before they answer the requests the commit serves,
// in commit order per instance. So a remembered record is the committed one
// for as long as it is remembered: the next write of that instance (a
// restart, a rewind) or its purge forgets it before any caller can learn of
// that change.
type waiters struct {
	mu       sync.Mutex
	byID     map[string][]chan *persistence.InstanceRecord
	closed   bool
	finished finishedRecords
	// live holds recent ids whose last committed record is not final: a
	// wait for one of them needs no read of the store to know it must wait
	// (its end will be reported here).
	live liveIDs
}

func newWaiters() *waiters {
	return &waiters{
		byID:     map[string][]chan *persistence.InstanceRecord{},
		finished: newFinishedRecords(maxFinishedRecords, maxFinishedBytes),
		live:     newLiveIDs(maxLiveIDs),
	}
}

// The recently finished records kept in memory: at most this many, holding
// at most this many bytes of payloads (input, output, custom status,
// failure). A record larger than maxFinishedRecordBytes is not kept.
const (
	maxFinishedRecords     = 8192
	maxFinishedBytes       = 8 << 20
	maxFinishedRecordBytes = 64 << 10
	// maxLiveIDs bounds the ids remembered as running, per partition.
	maxLiveIDs = 8192
)

// subscribe returns the final record of id if it is remembered (and then
// no channel), or else a channel that receives the record of the next
// status change that ends id (closed without one if the partition closes),
// and whether id is known to be running (its last committed record
// is not final), in which case the caller need not read the store.
func (w *waiters) subscribe(id string) (rec *persistence.InstanceRecord, ch chan *persistence.InstanceRecord, running bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		if rec := w.finished.get(id); rec != nil {
			return rec, nil, false
		}
	}
	ch = make(chan *persistence.InstanceRecord, 1)
	if w.closed {
		close(ch)
		return nil, ch, false
	}
	w.byID[id] = append(w.byID[id], ch)
	return nil, ch, w.live.has(id)
}

func (w *waiters) remove(id string, ch chan *persistence.InstanceRecord) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := slices.DeleteFunc(w.byID[id], func(c chan *persistence.InstanceRecord) bool { return c == ch })
	if len(list) == 0 {
		delete(w.byID, id)
	} else {
		w.byID[id] = list
	}
}

// finishedRecord returns the remembered final record of id, if it ended
// recently and has not been written or purged since.
func (w *waiters) finishedRecord(id string) *persistence.InstanceRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil // the store answers: ErrClosed
	}
	return w.finished.get(id)
}

// onRecord hears of every committed change of an instance's record: rec is
// the record of id just committed, nil if it was purged.
func (w *waiters) onRecord(id string, rec *persistence.InstanceRecord) {
	if rec == nil || !rec.Status.IsTerminal() {
		w.mu.Lock()
		w.finished.forget(id)
		if rec == nil {
			w.live.forget(id)
		} else {
			w.live.remember(id, struct{}{})
		}
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	w.live.forget(id)
	w.finished.remember(id, rec)
	list := w.byID[id]
	delete(w.byID, id)
	w.mu.Unlock()
	for _, ch := range list {
		ch <- rec
	}
}

// closeAll ends every subscription without a record (the partition
// closes: its callers may subscribe again wherever it reopens).
func (w *waiters) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for id, list := range w.byID {
		for _, ch := range list {
			close(ch)
		}
		delete(w.byID, id)
	}
}

// recentSet is a bounded first-in first-out map from instance ids to
// values: at most maxEntries of them, whose sizes add up to at most
// maxBytes; a value larger than maxEntryBytes is not kept. The oldest go
// first.
type recentSet[V any] struct {
	byID          map[string]recentEntry[V]
	order         []orderEntry // oldest first; entries whose seq is not byID's are stale
	seq           uint64
	bytes         int
	maxEntries    int
	maxBytes      int
	maxEntryBytes int
	size          func(V) int
}

type recentEntry[V any] struct {
	v   V
	seq uint64
}

type orderEntry struct {
	id  string
	seq uint64
}

// finishedRecords holds final records, bounded by count and payload bytes.
type finishedRecords = recentSet[*persistence.InstanceRecord]

func newFinishedRecords(maxRecords, maxBytes int) finishedRecords {
	return finishedRecords{byID: map[string]recentEntry[*persistence.InstanceRecord]{}, maxEntries: maxRecords,
		maxBytes: maxBytes, maxEntryBytes: maxFinishedRecordBytes, size: recordBytes}
}

// liveIDs holds the ids whose last committed record is not final.
type liveIDs = recentSet[struct{}]

func newLiveIDs(max int) liveIDs {
	return liveIDs{byID: map[string]recentEntry[struct{}]{}, maxEntries: max, maxBytes: max, maxEntryBytes: 1,
		size: func(struct{}) int { return 0 }}
}

func recordBytes(rec *persistence.InstanceRecord) int {
	n := len(rec.ID) + len(rec.Name) + len(rec.Input) + len(rec.Output) + len(rec.CustomStatus)
	if rec.Failure != nil {
		n += len(rec.Failure.Message) + len(rec.Failure.StackTrace) + len(rec.Failure.ErrorType)
	}
	return n
}

// get returns the value kept for id (the zero value if none).
func (f *recentSet[V]) get(id string) V { return f.byID[id].v }

// has reports whether a value is kept for id.
func (f *recentSet[V]) has(id string) bool {
	_, ok := f.byID[id]
	return ok
}

func (f *recentSet[V]) remember(id string, v V) {
	f.forget(id)
	size := f.size(v)
	if size > f.maxEntryBytes {
		return
	}
	f.seq++
	f.byID[id] = recentEntry[V]{v: v, seq: f.seq}
	f.order = append(f.order, orderEntry{id: id, seq: f.seq})
	f.bytes += size
	for len(f.byID) > f.maxEntries || f.bytes > f.maxBytes {
		oldest := f.order[0]
		f.order = f.order[1:]
		if f.byID[oldest.id].seq == oldest.seq {
			f.forget(oldest.id)
		}
	}
	if len(f.order) > 2*f.maxEntries {
		// Drop the stale entries, so order stays bounded however often
		// values are forgotten and remembered again.
		kept := make([]orderEntry, 0, len(f.byID))
		for _, e := range f.order {
			if f.byID[e.id].seq == e.seq {
				kept = append(kept, e)
			}
		}
		f.order = kept
	}
}

func (f *recentSet[V]) forget(id string) {
	if e, ok := f.byID[id]; ok {
		f.bytes -= f.size(e.v)
		delete(f.byID, id)
	}
}
