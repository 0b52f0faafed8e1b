package actors

import (
	"fmt"
	"strings"
	"testing"

	"github.com/durable-go/durable/persistence"
)

func TestFinishedRecordsStayWithinTheirBounds(t *testing.T) {
	rec := func(id string, output int) *persistence.InstanceRecord {
		return &persistence.InstanceRecord{ID: id, Status: persistence.StatusCompleted, Output: []byte(strings.Repeat("x", output))}
	}
	tests := []struct {
		name       string
		maxRecords int
		maxBytes   int
		outputs    int // bytes of output per record
		remember   int
		wantKept   int
	}{
		{"count bound", 10, 1 << 20, 1, 25, 10},
		{"byte bound", 1000, 1000, 96, 25, 10}, // id "r-NN" is 4 bytes: 100 bytes a record
		{"too large to keep", 10, 1 << 20, maxFinishedRecordBytes + 1, 5, 0},
		{"under both bounds", 100, 1 << 20, 10, 20, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFinishedRecords(tt.maxRecords, tt.maxBytes)
			for i := 0; i < tt.remember; i++ {
				id := fmt.Sprintf("r-%02d", i)
				f.remember(id, rec(id, tt.outputs))
			}
			if len(f.byID) != tt.wantKept {
				t.Fatalf("kept %d records, want %d", len(f.byID), tt.wantKept)
			}
			// The newest ones are kept.
			for i := tt.remember - tt.wantKept; i < tt.remember; i++ {
				if _, ok := f.byID[fmt.Sprintf("r-%02d", i)]; !ok {
					t.Fatalf("r-%02d was evicted before older records", i)
				}
			}
			total := 0
			for _, e := range f.byID {
				total += recordBytes(e.v)
			}
			if total != f.bytes || f.bytes > tt.maxBytes {
				t.Fatalf("bytes %d, counted %d, bound %d", f.bytes, total, tt.maxBytes)
			}
		})
	}
}

func TestFinishedRecordsForgetAndRememberAgainKeepsOrderBounded(t *testing.T) {
	f := newFinishedRecords(4, 1<<20)
	for i := 0; i < 1000; i++ {
		f.remember("same", &persistence.InstanceRecord{ID: "same", Status: persistence.StatusCompleted})
		if i%2 == 0 {
			f.forget("same")
		}
	}
	if len(f.order) > 2*f.maxEntries+1 || len(f.byID) != 1 || f.get("same") == nil {
		t.Fatalf("order %d, bytes %d, records %d", len(f.order), f.bytes, len(f.byID))
	}
}

func TestWaitersKnowWhichInstancesAreRunning(t *testing.T) {
	rec := func(s persistence.Status) *persistence.InstanceRecord {
		return &persistence.InstanceRecord{ID: "i", Status: s}
	}
	tests := []struct {
		name        string
		changes     []*persistence.InstanceRecord // nil: purged
		wantRunning bool
		wantFinal   bool
	}{
		{"never seen", nil, false, false},
		{"started", []*persistence.InstanceRecord{rec(persistence.StatusRunning)}, true, false},
		{"ended", []*persistence.InstanceRecord{rec(persistence.StatusRunning), rec(persistence.StatusCompleted)}, false, true},
		{"restarted after its end", []*persistence.InstanceRecord{rec(persistence.StatusFailed), rec(persistence.StatusRunning)}, true, false},
		{"purged", []*persistence.InstanceRecord{rec(persistence.StatusRunning), nil}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWaiters()
			for _, c := range tt.changes {
				w.onRecord("i", c)
			}
			final, ch, running := w.subscribe("i")
			if running != tt.wantRunning || (final != nil) != tt.wantFinal || (ch == nil) != tt.wantFinal {
				t.Fatalf("running %v, final %v, channel %v; want running %v, final %v", running, final, ch != nil, tt.wantRunning, tt.wantFinal)
			}
			if ch == nil {
				return
			}
			w.onRecord("i", rec(persistence.StatusCompleted))
			if got := <-ch; got == nil || got.Status != persistence.StatusCompleted {
				t.Fatalf("subscription got %v", got)
			}
		})
	}
}

func TestLiveIDsStayWithinTheirBound(t *testing.T) {
	w := newWaiters()
	for i := 0; i < 3*maxLiveIDs; i++ {
		w.onRecord(fmt.Sprint(i), &persistence.InstanceRecord{Status: persistence.StatusRunning})
	}
	if n := len(w.live.byID); n != maxLiveIDs {
		t.Fatalf("%d live ids kept, bound %d", n, maxLiveIDs)
	}
	if !w.live.has(fmt.Sprint(3*maxLiveIDs-1)) || w.live.has("0") {
		t.Fatal("the newest ids must be kept, the oldest dropped")
	}
}
