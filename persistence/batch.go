package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

type opKind uint8

const (
	opPutInstance opKind = iota + 1
	opAppendHistory
	opPutActivity
	opDeleteActivity
	opDeleteActivities
	opPutInbox
	opDeleteInbox
	opDeleteInstance
	opPutTimer
	opDeleteTimer
	opPutOutbox
	opDeleteOutbox
	opPutEntity
	opPutEntitySeen
	opDeleteEntity
)

type op struct {
	kind    opKind
	id      string
	gen     uint32
	seq     uint32 // first history seq
	n       uint64 // task id or inbox seq
	data    []byte // encoded record or inbox message; PutEntitySeen: the sender
	status  Status // PutInstance: new status (index key)
	created uint64 // PutInstance: created-at nanos (index key)

	// PutInstanceOver: the record being replaced, as the caller knows it,
	// so the old record need not be read inside the transaction.
	prevKnown   bool
	prevExists  bool
	prevStatus  Status
	prevCreated uint64
}

// Batch is a list of writes applied atomically by Partition.Commit: either
// all of them are committed or none. The zero value is an empty batch ready
// to use. Methods only record operations; nothing happens until Commit, and
// operations are applied in the order they were recorded.
//
// A Batch keeps references to the byte slices passed to it (history events,
// inbox messages): do not modify them until Commit returns. PutInstance
// encodes the record immediately, so the record may be reused at once.
// A Batch is not safe for concurrent use and must not be committed twice.
type Batch struct {
	ops []op

	// Conservative estimate of what the batch costs in a Badger
	// transaction (see estimateEntry); prefix deletes count one entry.
	estCount int64
	estSize  int64
	rawSize  int64 // bytes of all keys and values, for the memory cap of a group
}

// estimateEntry returns an upper estimate of what one key/value costs against
// Badger's transaction limits: Badger counts len(key)+len(value)+2 (+10 for
// the version suffix), or key+12 (+12) for a value that goes to the value
// log. We add a little slack.
func estimateEntry(keyLen, valLen int) int64 {
	if valLen >= valueThreshold {
		valLen = 12
	}
	return int64(keyLen + valLen + 20)
}

func (b *Batch) add(o op, entries int64, size int64, raw int) {
	if b.ops == nil {
		// A turn's batch holds three or four operations (record, history,
		// pending work): one allocation instead of growing through 1 and 2.
		b.ops = make([]op, 0, 4)
	}
	b.ops = append(b.ops, o)
	b.estCount += entries
	b.estSize += size
	b.rawSize += int64(raw)
}

// PutInstance writes the instance record. At commit time the old record (if
// any) is read inside the transaction and the status (s/) and created-time
// (c/) index entries are moved to match the new record.
func (b *Batch) PutInstance(rec *InstanceRecord) {
	data := EncodeInstanceRecord(rec)
	idl := len(rec.ID)
	// i/ put, s/ and c/ put, old s/ and c/ delete.
	size := estimateEntry(2+idl, len(data)) + 2*estimateEntry(3+idl, 0) + 2*estimateEntry(10+idl, 0)
	b.add(op{kind: opPutInstance, id: rec.ID, data: data, status: rec.Status, created: createdNanos(rec.CreatedAt)},
		5, size, len(data)+3*idl)
}

// PutInstanceOver writes the instance record like PutInstance, for a caller
// that knows the committed record it replaces (prev, nil if none) because
// it is the record's only writer: the old record is not read back, and the
// index entries are rewritten only if the status or creation time changed.
func (b *Batch) PutInstanceOver(prev, rec *InstanceRecord) {
	data := EncodeInstanceRecord(rec)
	idl := len(rec.ID)
	size := estimateEntry(2+idl, len(data)) + 2*estimateEntry(3+idl, 0) + 2*estimateEntry(10+idl, 0)
	o := op{kind: opPutInstance, id: rec.ID, data: data, status: rec.Status, created: createdNanos(rec.CreatedAt), prevKnown: true}
	if prev != nil {
		o.prevExists, o.prevStatus, o.prevCreated = true, prev.Status, createdNanos(prev.CreatedAt)
	}
	b.add(o, 5, size, len(data)+3*idl)
}

// AppendHistory writes events as history entries firstSeq, firstSeq+1, ... of
// generation gen of instance id. The events of one call are stored as one
// chunk under the key of firstSeq: a turn's events cost one key, not one
// each (fewer memtable inserts, faster loads).
func (b *Batch) AppendHistory(id string, gen uint32, firstSeq uint32, events [][]byte) {
	if len(events) == 0 {
		return
	}
	start, size := 0, 0
	flush := func(end int) {
		chunk := encodeHistoryChunk(events[start:end])
		b.add(op{kind: opAppendHistory, id: id, gen: gen, seq: firstSeq + uint32(start), data: chunk}, 1,
			estimateEntry(len(id)+11, len(chunk)), len(id)+11+len(chunk))
		start, size = end, 0
	}
	for i, e := range events {
		if size > 0 && size+len(e) > maxHistoryChunk {
			flush(i)
		}
		size += len(e) + 4
	}
	flush(len(events))
}

// maxHistoryChunk bounds a history chunk's size, so a wide turn's events
// stay well under Badger's value limits (an in-memory store rejects values
// over its value threshold).
const maxHistoryChunk = 32 << 10

// PutPendingActivity records that activity task taskID of instance id is
// scheduled and not yet completed (the recovery index).
func (b *Batch) PutPendingActivity(id string, taskID uint64) {
	b.add(op{kind: opPutActivity, id: id, n: taskID}, 1, estimateEntry(len(id)+11, 0), len(id)+11)
}

// DeletePendingActivity removes one pending activity entry.
func (b *Batch) DeletePendingActivity(id string, taskID uint64) {
	b.add(op{kind: opDeleteActivity, id: id, n: taskID}, 1, estimateEntry(len(id)+11, 0), len(id)+11)
}

// pendingWorkTask is the task number of the one pending-work entry an
// instance with FlagPendingWork keeps (PutPendingWork): no task has it,
// since task ids count up from zero.
const pendingWorkTask = ^uint64(0)

// PutPendingWork records that instance id has activities or
// sub-orchestrations scheduled and not completed: one entry of the
// recovery index (a/) for all of them, written when the first opens and
// deleted (DeletePendingWork) when the last closes. An instance whose
// record has FlagPendingWork keeps this entry instead of one per task.
func (b *Batch) PutPendingWork(id string) { b.PutPendingActivity(id, pendingWorkTask) }

// DeletePendingWork removes the entry PutPendingWork wrote.
func (b *Batch) DeletePendingWork(id string) { b.DeletePendingActivity(id, pendingWorkTask) }

// DeletePendingActivities removes all pending activity entries of instance id
// (a prefix scan inside the transaction).
func (b *Batch) DeletePendingActivities(id string) {
	b.add(op{kind: opDeleteActivities, id: id}, 1, estimateEntry(len(id)+11, 0), len(id))
}

// PutInbox stores an undelivered message for instance id under sequence
// number seq (see Partition.NextInboxSeq). Messages load in seq order.
func (b *Batch) PutInbox(id string, seq uint64, msg []byte) {
	b.add(op{kind: opPutInbox, id: id, n: seq, data: msg}, 1, estimateEntry(len(id)+11, len(msg)), len(id)+11+len(msg))
}

// DeleteInbox removes one inbox message.
func (b *Batch) DeleteInbox(id string, seq uint64) {
	b.add(op{kind: opDeleteInbox, id: id, n: seq}, 1, estimateEntry(len(id)+11, 0), len(id)+11)
}

// DeleteInstance purges instance id: its record, its status and created-time
// index entries, its history (all generations), its pending activities and its
// inbox. Every deleted key counts against the transaction size limit, so
// delete a long history first with Partition.DeleteHistoryBelow.
func (b *Batch) DeleteInstance(id string) {
	b.add(op{kind: opDeleteInstance, id: id}, 6, 6*estimateEntry(len(id)+11, 0), len(id))
}

// PutTimer records a durable timer of instance id, task taskID, due at due
// (the due-timer index).
func (b *Batch) PutTimer(id string, taskID uint64, due time.Time) {
	b.add(op{kind: opPutTimer, id: id, n: taskID, created: createdNanos(due)}, 1, estimateEntry(len(id)+19, 0), len(id)+19)
}

// DeleteTimer removes a timer recorded by PutTimer (same arguments).
func (b *Batch) DeleteTimer(id string, taskID uint64, due time.Time) {
	b.add(op{kind: opDeleteTimer, id: id, n: taskID, created: createdNanos(due)}, 1, estimateEntry(len(id)+19, 0), len(id)+19)
}

// PutOutbox records a message sender must deliver to another instance or
// entity (the durable outbox): it stays until the receiver acknowledges it.
func (b *Batch) PutOutbox(sender string, seq uint64, msg []byte) {
	b.add(op{kind: opPutOutbox, id: sender, n: seq, data: msg}, 1, estimateEntry(len(sender)+11, len(msg)), len(sender)+11+len(msg))
}

// DeleteOutbox removes an acknowledged outbox message.
func (b *Batch) DeleteOutbox(sender string, seq uint64) {
	b.add(op{kind: opDeleteOutbox, id: sender, n: seq}, 1, estimateEntry(len(sender)+11, 0), len(sender)+11)
}

// PutEntity writes the record of entity id (opaque bytes).
func (b *Batch) PutEntity(id string, data []byte) {
	b.add(op{kind: opPutEntity, id: id, data: data}, 1, estimateEntry(len(id)+2, len(data)), len(id)+2+len(data))
}

// PutEntitySeen records seq as the highest outbox seq of sender that entity
// has applied. One key per sender, so an entity signaled by very many
// orchestrations does not rewrite a growing record on every operation.
func (b *Batch) PutEntitySeen(entity, sender string, seq uint64) {
	b.add(op{kind: opPutEntitySeen, id: entity, data: []byte(sender), n: seq}, 1,
		estimateEntry(len(entity)+len(sender)+3, 10), len(entity)+len(sender)+13)
}

// DeleteEntity removes the record of entity id and its inbox and outbox.
// The entity's de-duplication entries stay, so a message it applied before
// is still recognised if it is delivered again.
func (b *Batch) DeleteEntity(id string) {
	b.add(op{kind: opDeleteEntity, id: id}, 3, 3*estimateEntry(len(id)+11, 0), len(id))
}

// Empty reports whether no operation has been recorded.
func (b *Batch) Empty() bool { return len(b.ops) == 0 }

// apply performs the batch's operations in txn, in order. On error the
// transaction holds part of the batch and must be discarded.
func (b *Batch) apply(txn *badger.Txn) error {
	for i := range b.ops {
		o := &b.ops[i]
		if err := validID(o.id); err != nil {
			return err
		}
		if err := o.apply(txn); err != nil {
			return err
		}
	}
	return nil
}

func (o *op) apply(txn *badger.Txn) error {
	switch o.kind {
	case opPutInstance:
		key := instanceKey(o.id)
		if !o.prevKnown {
			old, err := loadInstanceTxn(txn, o.id)
			switch {
			case err == nil:
				o.prevExists, o.prevStatus, o.prevCreated = true, old.Status, createdNanos(old.CreatedAt)
			case !errors.Is(err, ErrNotFound):
				return fmt.Errorf("put instance %q: read old record: %w", o.id, err)
			}
		}
		if err := txn.Set(key, o.data); err != nil {
			return err
		}
		if o.prevExists {
			if o.prevStatus == o.status && o.prevCreated == o.created {
				return nil // the index entries stay as they are
			}
			if err := deleteIndexEntries(txn, o.id, o.prevStatus, o.prevCreated); err != nil {
				return err
			}
		}
		if err := txn.Set(statusKey(o.status, o.id), nil); err != nil {
			return err
		}
		return txn.Set(createdKey(o.created, o.id), nil)
	case opAppendHistory:
		return txn.Set(historyKey(o.id, o.gen, o.seq), o.data)
	case opPutActivity:
		return txn.Set(activityKey(o.id, o.n), nil)
	case opDeleteActivity:
		return txn.Delete(activityKey(o.id, o.n))
	case opDeleteActivities:
		return deletePrefix(txn, activityPrefix(o.id))
	case opPutInbox:
		return txn.Set(inboxKey(o.id, o.n), o.data)
	case opDeleteInbox:
		return txn.Delete(inboxKey(o.id, o.n))
	case opPutTimer:
		return txn.Set(timerKey(o.created, o.id, o.n), nil)
	case opDeleteTimer:
		return txn.Delete(timerKey(o.created, o.id, o.n))
	case opPutOutbox:
		return txn.Set(outboxKey(o.id, o.n), o.data)
	case opDeleteOutbox:
		return txn.Delete(outboxKey(o.id, o.n))
	case opPutEntity:
		return txn.Set(entityKey(o.id), o.data)
	case opPutEntitySeen:
		sender := string(o.data)
		if err := validID(sender); err != nil {
			return err
		}
		return txn.Set(seenKey(o.id, sender), binary.AppendUvarint(nil, o.n))
	case opDeleteEntity:
		if err := txn.Delete(entityKey(o.id)); err != nil {
			return err
		}
		for _, p := range [][]byte{inboxPrefix(o.id), outboxPrefix(o.id)} {
			if err := deletePrefix(txn, p); err != nil {
				return err
			}
		}
		return nil
	case opDeleteInstance:
		old, err := loadInstanceTxn(txn, o.id)
		switch {
		case err == nil:
			if err := deleteIndexEntries(txn, o.id, old.Status, createdNanos(old.CreatedAt)); err != nil {
				return err
			}
			if err := txn.Delete(instanceKey(o.id)); err != nil {
				return err
			}
		case errors.Is(err, ErrNotFound):
		default:
			return fmt.Errorf("delete instance %q: read old record: %w", o.id, err)
		}
		for _, p := range [][]byte{historyPrefix(o.id), activityPrefix(o.id), inboxPrefix(o.id), outboxPrefix(o.id)} {
			if err := deletePrefix(txn, p); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown batch operation %d", o.kind)
}

// deleteIndexEntries removes a record's status and created-time index keys.
func deleteIndexEntries(txn *badger.Txn, id string, st Status, created uint64) error {
	if err := txn.Delete(statusKey(st, id)); err != nil {
		return err
	}
	return txn.Delete(createdKey(created, id))
}

// deletePrefix deletes every key under prefix, including keys written
// earlier in the same transaction (Badger's iterators in an update
// transaction see its pending writes). Keys are collected first and the
// iterator closed before deleting: Badger allows one iterator at a time per
// read-write transaction.
func deletePrefix(txn *badger.Txn, prefix []byte) error {
	var keys [][]byte
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func loadInstanceTxn(txn *badger.Txn, id string) (*InstanceRecord, error) {
	item, err := txn.Get(instanceKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("instance %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var rec *InstanceRecord
	err = item.Value(func(v []byte) error {
		var derr error
		rec, derr = DecodeInstanceRecord(v)
		return derr
	})
	if err != nil {
		return nil, fmt.Errorf("instance %q: %w", id, err)
	}
	return rec, nil
}
