package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Key families. Every key starts with a one-byte family letter and '/'.
// Variable-length ids are terminated by 0x00 where something follows them, so
// that the prefix of one id is never the prefix of another id's keys
// ("ab" vs "abc"). Ids never contain 0x00 (checked by validID).
//
//	i/<id>                                  instance record
//	h/<id>\x00<gen uint32 BE><seq uint32 BE> history event (opaque bytes)
//	a/<id>\x00<task uint64 BE>              pending activity (recovery index)
//	m/<id>\x00<seq uint64 BE>               inbox message (opaque bytes)
//	s/<status byte><id>                     status index (same txn as i/)
//	c/<createdAt unixnano uint64 BE><id>    created-time index (same txn as i/)
//	t/<due unixnano uint64 BE><id>\x00<task uint64 BE>  due timer, ordered by time
//	o/<sender>\x00<seq uint64 BE>           outbox: message to deliver to another instance or entity
//	e/<entity id>                           entity record
//	d/<entity id>\x00<sender id>             highest outbox seq of sender the entity applied (de-duplication)
const (
	famInstance = "i/"
	famHistory  = "h/"
	famActivity = "a/"
	famInbox    = "m/"
	famStatus   = "s/"
	famCreated  = "c/"
	famTimer    = "t/"
	famOutbox   = "o/"
	famEntity   = "e/"
	famSeen     = "d/"
)

func outboxPrefix(id string) []byte { return idPrefix(famOutbox, id, 8) }

func outboxKey(id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(outboxPrefix(id), seq)
}

func seenKey(entity, sender string) []byte {
	return append(idPrefix(famSeen, entity, len(sender)), sender...)
}

func entityKey(id string) []byte {
	k := make([]byte, 0, len(famEntity)+len(id))
	return append(append(k, famEntity...), id...)
}

func timerKey(due uint64, id string, task uint64) []byte {
	k := make([]byte, 0, len(famTimer)+8+len(id)+9)
	k = append(k, famTimer...)
	k = binary.BigEndian.AppendUint64(k, due)
	k = append(k, id...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, task)
}

// ErrInvalidID is returned for an empty instance id or one containing a NUL
// byte (NUL separates the id from the rest of a key).
var ErrInvalidID = errors.New("invalid instance id")

func validID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if strings.IndexByte(id, 0) >= 0 {
		return fmt.Errorf("%w: %q contains a NUL byte", ErrInvalidID, id)
	}
	return nil
}

func instanceKey(id string) []byte {
	k := make([]byte, 0, len(famInstance)+len(id))
	return append(append(k, famInstance...), id...)
}

// idPrefix returns fam + id + 0x00 with room for extra more bytes.
func idPrefix(fam, id string, extra int) []byte {
	k := make([]byte, 0, len(fam)+len(id)+1+extra)
	k = append(k, fam...)
	k = append(k, id...)
	return append(k, 0)
}

func historyPrefix(id string) []byte { return idPrefix(famHistory, id, 8) }

func historyGenPrefix(id string, gen uint32) []byte {
	return binary.BigEndian.AppendUint32(idPrefix(famHistory, id, 8), gen)
}

func historyKey(id string, gen, seq uint32) []byte {
	return binary.BigEndian.AppendUint32(historyGenPrefix(id, gen), seq)
}

func activityPrefix(id string) []byte { return idPrefix(famActivity, id, 8) }

func activityKey(id string, task uint64) []byte {
	return binary.BigEndian.AppendUint64(activityPrefix(id), task)
}

func inboxPrefix(id string) []byte { return idPrefix(famInbox, id, 8) }

func inboxKey(id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(inboxPrefix(id), seq)
}

func statusPrefix(st Status) []byte { return []byte{famStatus[0], famStatus[1], byte(st)} }

func statusKey(st Status, id string) []byte {
	return append(statusPrefix(st), id...)
}

// createdNanos maps a creation time to the index's uint64: the zero time and
// times before 1970 map to 0 so the index order stays meaningful.
func createdNanos(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	n := t.UnixNano()
	if n < 0 {
		return 0
	}
	return uint64(n)
}

func createdKey(nanos uint64, id string) []byte {
	k := make([]byte, 0, len(famCreated)+8+len(id))
	k = append(k, famCreated...)
	k = binary.BigEndian.AppendUint64(k, nanos)
	return append(k, id...)
}

// splitIDKey parses fam + id + 0x00 + suffix, returning the id and the
// suffix. ok is false if the key is malformed.
func splitIDKey(key []byte, fam string, suffixLen int) (id string, suffix []byte, ok bool) {
	if len(key) < len(fam)+1+suffixLen || string(key[:len(fam)]) != fam {
		return "", nil, false
	}
	rest := key[len(fam):]
	sep := len(rest) - suffixLen - 1
	if sep < 1 || rest[sep] != 0 {
		return "", nil, false
	}
	return string(rest[:sep]), rest[sep+1:], true
}
