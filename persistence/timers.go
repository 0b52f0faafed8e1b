package persistence

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TimerEntry is one durable timer of the due-timer index.
type TimerEntry struct {
	ID     string
	TaskID uint64
	Due    time.Time
}

// DueTimers returns up to limit timers due at or before until, earliest
// first (limit <= 0: all). It reads the due-timer index only.
func (p *Partition) DueTimers(until time.Time, limit int) ([]TimerEntry, error) {
	end := createdNanos(until)
	var out []TimerEntry
	err := p.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(famTimer)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) < len(famTimer)+8+2+8 || k[len(k)-9] != 0 {
				return fmt.Errorf("malformed timer key %q", k)
			}
			due := binary.BigEndian.Uint64(k[len(famTimer):])
			if due > end {
				break
			}
			out = append(out, TimerEntry{
				ID:     string(k[len(famTimer)+8 : len(k)-9]),
				TaskID: binary.BigEndian.Uint64(k[len(k)-8:]),
				Due:    time.Unix(0, int64(due)).UTC(),
			})
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("due timers: partition %d: %w", p.index, err)
	}
	return out, nil
}
