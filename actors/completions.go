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
}

func newWaiters() *waiters {
	return &waiters{
		byID:     map[string][]chan *persistence.InstanceRecord{},
		finished: newFinishedRecords(maxFinishedRecords, maxFinishedBytes),
	}
}

// The recently finished records kept in memory: at most this many, holding
// at most this many bytes of payloads (input, output, custom status,
// failure). A record larger than maxFinishedRecordBytes is not kept.
const (
	maxFinishedRecords     = 8192
	maxFinishedBytes       = 8 << 20
	maxFinishedRecordBytes = 64 << 10
)

// add returns a channel that receives the record of the next status change
// that ends id (closed without one if the runtime closes).
func (w *waiters) add(id string) chan *persistence.InstanceRecord {
	ch := make(chan *persistence.InstanceRecord, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		close(ch)
		return ch
	}
	w.byID[id] = append(w.byID[id], ch)
	return ch
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
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
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

// finishedRecords is a bounded first-in first-out set of final records.
type finishedRecords struct {
	byID       map[string]finishedEntry
	order      []orderEntry // oldest first; entries whose seq is not byID's are stale
	seq        uint64
	bytes      int
	maxRecords int
	maxBytes   int
}

type finishedEntry struct {
	rec *persistence.InstanceRecord
	seq uint64
}

type orderEntry struct {
	id  string
	seq uint64
}

func newFinishedRecords(maxRecords, maxBytes int) finishedRecords {
	return finishedRecords{byID: map[string]finishedEntry{}, maxRecords: maxRecords, maxBytes: maxBytes}
}

func recordBytes(rec *persistence.InstanceRecord) int {
	n := len(rec.ID) + len(rec.Name) + len(rec.Input) + len(rec.Output) + len(rec.CustomStatus)
	if rec.Failure != nil {
		n += len(rec.Failure.Message) + len(rec.Failure.StackTrace) + len(rec.Failure.ErrorType)
	}
	return n
}

func (f *finishedRecords) get(id string) *persistence.InstanceRecord { return f.byID[id].rec }

func (f *finishedRecords) remember(id string, rec *persistence.InstanceRecord) {
	f.forget(id)
	size := recordBytes(rec)
	if size > maxFinishedRecordBytes {
		return
	}
	f.seq++
	f.byID[id] = finishedEntry{rec: rec, seq: f.seq}
	f.order = append(f.order, orderEntry{id: id, seq: f.seq})
	f.bytes += size
	for len(f.byID) > f.maxRecords || f.bytes > f.maxBytes {
		oldest := f.order[0]
		f.order = f.order[1:]
		if f.byID[oldest.id].seq == oldest.seq {
			f.forget(oldest.id)
		}
	}
	if len(f.order) > 2*f.maxRecords {
		// Drop the stale entries, so order stays bounded however often
		// records are forgotten and remembered again.
		live := make([]orderEntry, 0, len(f.byID))
		for _, e := range f.order {
			if f.byID[e.id].seq == e.seq {
				live = append(live, e)
			}
		}
		f.order = live
	}
}

func (f *finishedRecords) forget(id string) {
	if e, ok := f.byID[id]; ok {
		f.bytes -= recordBytes(e.rec)
		delete(f.byID, id)
	}
}
