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
	if err := validID(sender); err != nil {
		return nil, err
	}
	var msgs []InboxMessage
	err := p.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: outboxPrefix(sender)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			_, suffix, ok := splitIDKey(item.Key(), famOutbox, 8)
			if !ok {
				return fmt.Errorf("malformed outbox key %q", item.Key())
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			msgs = append(msgs, InboxMessage{Seq: binary.BigEndian.Uint64(suffix), Data: v})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load outbox of %q: partition %d: %w", sender, p.index, err)
	}
	return msgs, nil
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
