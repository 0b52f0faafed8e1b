package persistence

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

func TestHistoryOfManyAndLargeEventsRoundTripsInMemoryAndOnDisk(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		h, err := Open(Options{Dir: dir, Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		p := h.Partition(0)
		var events [][]byte
		for i := 0; i < 5000; i++ {
			events = append(events, []byte(fmt.Sprintf("event-%d", i)))
		}
		events = append(events, bytes.Repeat([]byte("x"), 200<<10)) // one big payload
		var b Batch
		b.AppendHistory("inst", 1, 0, events[:3000])
		b.AppendHistory("inst", 1, 3000, events[3000:])
		if err := p.Commit(context.Background(), &b); err != nil {
			t.Fatalf("dir %q: %v", dir, err)
		}
		got, err := p.LoadHistory("inst", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(events) {
			t.Fatalf("dir %q: %d events, want %d", dir, len(got), len(events))
		}
		for i := range events {
			if !bytes.Equal(got[i], events[i]) {
				t.Fatalf("dir %q: event %d differs", dir, i)
			}
		}
		_ = h.Close()
	}
}

func FuzzHistoryChunk(f *testing.F) {
	f.Add(encodeHistoryChunk([][]byte{[]byte("a"), {}, []byte("bc")}))
	f.Add([]byte{historyChunkFormat, 5})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, v []byte) {
		events, err := appendHistoryChunk(nil, v)
		if err != nil || len(v) == 0 || v[0] != historyChunkFormat {
			return
		}
		again, err := appendHistoryChunk(nil, encodeHistoryChunk(events))
		if err != nil || len(again) != len(events) {
			t.Fatalf("re-encoding: %v, %d vs %d events", err, len(again), len(events))
		}
	})
}
