package persistence

import (
	"context"
	"testing"
)

// BenchmarkLoadHistory: one op loads a 1000-event history (100-byte events)
// from disk; ns/event is the per-event cost of an activation's load.
func BenchmarkLoadHistory(b *testing.B) {
	h, err := Open(Options{Dir: b.TempDir(), Partitions: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	p := h.Partition(0)
	ev := make([]byte, 100)
	events := make([][]byte, 1000)
	for i := range events {
		events[i] = ev
	}
	var batch Batch
	batch.AppendHistory("inst", 1, 0, events)
	if err := p.Commit(context.Background(), &batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := p.LoadHistory("inst", 1)
		if err != nil || len(got) != 1000 {
			b.Fatalf("%d events, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}
