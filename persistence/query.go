package persistence

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ListFilter selects instances for ListInstances. Zero fields select all.
type ListFilter struct {
	CreatedFrom time.Time // inclusive
	CreatedTo   time.Time // inclusive
	Statuses    []Status
	IDPrefix    string
}

// ListCursor is a position in the created-time index: listings continue
// strictly after it.
type ListCursor struct {
	CreatedNanos uint64
	ID           string
}

// CursorOf returns the cursor just at rec, to continue a listing after it.
func CursorOf(rec *InstanceRecord) ListCursor {
	return ListCursor{CreatedNanos: createdNanos(rec.CreatedAt), ID: rec.ID}
}

// Less orders cursors as the index does.
func (c ListCursor) Less(o ListCursor) bool {
	if c.CreatedNanos != o.CreatedNanos {
		return c.CreatedNanos < o.CreatedNanos
	}
	return c.ID < o.ID
}

// ListInstances returns up to limit records that match f, in created-time
// order (ties by id), strictly after `after` (nil: from the start). It walks
// the created-time index from CreatedFrom (or the cursor) and stops at
// CreatedTo, so a time range never reads outside it; status and id-prefix
// filters are applied to the records the walk meets.
func (p *Partition) ListInstances(f ListFilter, after *ListCursor, limit int) ([]*InstanceRecord, error) {
	var out []*InstanceRecord
	from := createdNanos(f.CreatedFrom)
	var to uint64 = ^uint64(0)
	if !f.CreatedTo.IsZero() {
		to = createdNanos(f.CreatedTo)
	}
	start := createdKey(from, "")
	if after != nil && after.CreatedNanos >= from {
		start = createdKey(after.CreatedNanos, after.ID)
	}
	wanted := map[Status]bool{}
	for _, s := range f.Statuses {
		wanted[s] = true
	}
	err := p.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(famCreated)})
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) < len(famCreated)+8 {
				return fmt.Errorf("malformed created-time key %q", k)
			}
			nanos := binary.BigEndian.Uint64(k[len(famCreated):])
			if nanos > to {
				break
			}
			id := string(k[len(famCreated)+8:])
			if after != nil && nanos == after.CreatedNanos && id == after.ID {
				continue
			}
			if f.IDPrefix != "" && !strings.HasPrefix(id, f.IDPrefix) {
				continue
			}
			rec, err := loadInstanceTxn(txn, id)
			if err != nil {
				return fmt.Errorf("instance %q of the created-time index: %w", id, err)
			}
			if len(wanted) > 0 && !wanted[rec.Status] {
				continue
			}
			out = append(out, rec)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list instances: partition %d: %w", p.index, err)
	}
	return out, nil
}
