package persistence

import (
	"encoding/binary"
	"fmt"
	"time"
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
	err := p.scanKeys([]byte(famTimer), func(k []byte) error {
		if len(k) < len(famTimer)+8+2+8 || k[len(k)-9] != 0 {
			return fmt.Errorf("malformed timer key %q", k)
		}
		due := binary.BigEndian.Uint64(k[len(famTimer):])
		if due > end {
			return errStopScan
		}
		out = append(out, TimerEntry{
			ID:     string(k[len(famTimer)+8 : len(k)-9]),
			TaskID: binary.BigEndian.Uint64(k[len(k)-8:]),
			Due:    time.Unix(0, int64(due)).UTC(),
		})
		if limit > 0 && len(out) >= limit {
			return errStopScan
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("due timers: partition %d: %w", p.index, err)
	}
	return out, nil
}
