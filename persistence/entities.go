package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// LoadOutbox returns the unacknowledged outbox messages of sender, in seq
// order.
func (p *Partition) LoadOutbox(sender string) ([]InboxMessage, error) {
	return p.loadMessages("outbox", famOutbox, sender)
}

// LoadEntity returns the record of entity id, or an error wrapping
// ErrNotFound.
func (p *Partition) LoadEntity(id string) ([]byte, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var data []byte
	err := p.view(func(txn *badger.Txn) error {
		item, err := txn.Get(entityKey(id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("entity %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		data, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load entity: partition %d: %w", p.index, err)
	}
	return data, nil
}

// LoadEntitySeen returns the highest outbox seq of sender that entity has
// applied (PutEntitySeen), 0 if none.
func (p *Partition) LoadEntitySeen(entity, sender string) (uint64, error) {
	if err := validID(entity); err != nil {
		return 0, err
	}
	if err := validID(sender); err != nil {
		return 0, err
	}
	var seq uint64
	err := p.view(func(txn *badger.Txn) error {
		item, err := txn.Get(seenKey(entity, sender))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			n, size := binary.Uvarint(v)
			if size <= 0 {
				return fmt.Errorf("malformed de-duplication entry %q", v)
			}
			seq = n
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("load what entity %s applied from %s: partition %d: %w", entity, sender, p.index, err)
	}
	return seq, nil
}

// EntityEntry is one entity record of a listing.
type EntityEntry struct {
	ID   string
	Data []byte
}

// ListEntities returns up to limit entity records whose id starts with
// prefix, in id order, strictly after the id after ("" = from the start).
func (p *Partition) ListEntities(prefix, after string, limit int) ([]EntityEntry, error) {
	var out []EntityEntry
	err := p.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: entityKey(prefix)})
		defer it.Close()
		start := entityKey(prefix)
		if after > prefix {
			start = entityKey(after)
		}
		for it.Seek(start); it.Valid(); it.Next() {
			id := string(it.Item().Key()[len(famEntity):])
			if id == after {
				continue
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, EntityEntry{ID: id, Data: v})
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list entities: partition %d: %w", p.index, err)
	}
	return out, nil
}
