package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// historyChunkFormat leads a history value that holds several events (a
// turn's). It differs from the first byte of an encoded history event, so
// a value holding one bare event stays readable.
const historyChunkFormat = 0xC1

// errCorruptChunk is wrapped by history chunk decoding errors.
var errCorruptChunk = errors.New("corrupt history chunk")

// encodeHistoryChunk packs events: the format byte, a uvarint count, then
// each event as a uvarint length and its bytes.
func encodeHistoryChunk(events [][]byte) []byte {
	n := 1 + binary.MaxVarintLen32
	for _, e := range events {
		n += binary.MaxVarintLen32 + len(e)
	}
	b := make([]byte, 0, n)
	b = append(b, historyChunkFormat)
	b = binary.AppendUvarint(b, uint64(len(events)))
	for _, e := range events {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b
}

// appendHistoryChunk appends the events of a stored history value to
// events, copying them out of v. A value that is not a chunk is one event.
func appendHistoryChunk(events [][]byte, v []byte) ([][]byte, error) {
	if len(v) == 0 || v[0] != historyChunkFormat {
		return append(events, append([]byte(nil), v...)), nil
	}
	v = v[1:]
	count, n := binary.Uvarint(v)
	if n <= 0 || count > uint64(len(v)) {
		return nil, fmt.Errorf("%w: bad count", errCorruptChunk)
	}
	v = v[n:]
	for i := uint64(0); i < count; i++ {
		size, n := binary.Uvarint(v)
		if n <= 0 || size > uint64(len(v)-n) {
			return nil, fmt.Errorf("%w: event %d: bad length", errCorruptChunk, i)
		}
		v = v[n:]
		events = append(events, append([]byte(nil), v[:size]...))
		v = v[size:]
	}
	if len(v) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorruptChunk, len(v))
	}
	return events, nil
}
