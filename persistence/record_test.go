package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

func sampleRecord() *InstanceRecord {
	return &InstanceRecord{
		ID:           "order-42",
		Name:         "ProcessOrder",
		Version:      "2",
		ExecutionID:  "3f1c0f4e-8f5e-4b8e-9d4a-0c2b7f1f6a11",
		Generation:   3,
		Status:       StatusFailed,
		Input:        []byte(`{"qty":2}`),
		Output:       []byte{},
		CustomStatus: nil,
		Failure: &Failure{ErrorType: "TaskFailed", Message: "activity failed", StackTrace: "main.go:1",
			Inner: &Failure{ErrorType: "TimeoutError", Message: "too slow", Inner: &Failure{Message: "root cause"}}},
		RequestKeys:       []string{"k1", "k2"},
		CreatedAt:         time.Unix(1700000000, 123456789),
		LastUpdatedAt:     time.Unix(0, -5), // before 1970: zigzag keeps the sign
		HistoryLen:        17,
		HistoryFloor:      3,
		ParentInstanceID:  "parent",
		ParentExecutionID: "pexec",
		ParentTaskID:      -3,
		Flags:             FlagUsesOutbox,
	}
}

// recordsEqual compares records field by field, times by instant.
func recordsEqual(a, b *InstanceRecord) bool {
	bytesEq := func(x, y []byte) bool { return (x == nil) == (y == nil) && bytes.Equal(x, y) }
	timeEq := func(x, y time.Time) bool { return x.IsZero() == y.IsZero() && x.Equal(y) }
	failEq := reflect.DeepEqual(a.Failure, b.Failure)
	keysEq := slices.Equal(a.RequestKeys, b.RequestKeys)
	return a.ID == b.ID && a.Name == b.Name && a.Version == b.Version && a.ExecutionID == b.ExecutionID &&
		a.Generation == b.Generation && a.Status == b.Status &&
		bytesEq(a.Input, b.Input) && bytesEq(a.Output, b.Output) && bytesEq(a.CustomStatus, b.CustomStatus) &&
		failEq && timeEq(a.CreatedAt, b.CreatedAt) && timeEq(a.LastUpdatedAt, b.LastUpdatedAt) &&
		a.HistoryLen == b.HistoryLen && a.ParentInstanceID == b.ParentInstanceID && a.ParentExecutionID == b.ParentExecutionID && a.ParentTaskID == b.ParentTaskID && a.Flags == b.Flags && a.HistoryFloor == b.HistoryFloor && keysEq
}

func TestRememberRequestKeyKeepsTheNewestWithinTheBound(t *testing.T) {
	var keys []string
	for i := range MaxRequestKeys + 3 {
		keys = RememberRequestKey(keys, fmt.Sprint(i))
	}
	keys = RememberRequestKey(keys, "") // no key: nothing to remember
	if len(keys) != MaxRequestKeys || keys[0] != "3" || keys[len(keys)-1] != fmt.Sprint(MaxRequestKeys+2) {
		t.Fatalf("kept %v", keys)
	}
	// A record copied before a key was added keeps its own view.
	older := keys
	_ = RememberRequestKey(keys, "newest")
	if older[0] != "3" || len(older) != MaxRequestKeys {
		t.Fatalf("an older copy changed: %v", older)
	}
}

func TestDecodeRejectsAFailureChainWithoutEnd(t *testing.T) {
	f := &Failure{Message: "leaf"}
	for range maxFailureDepth + 1 {
		f = &Failure{Message: "wrap", Inner: f}
	}
	if _, err := DecodeInstanceRecord(EncodeInstanceRecord(&InstanceRecord{ID: "x", Failure: f})); err == nil {
		t.Fatal("a failure nested past the bound decoded")
	}
}

func TestInstanceRecordRoundTrips(t *testing.T) {
	tests := []struct {
		name string
		rec  *InstanceRecord
	}{
		{"a full record keeps every field, nil and empty slices apart", sampleRecord()},
		{"an empty record stays empty", &InstanceRecord{}},
		{"a record at the unix epoch keeps its non-zero time", &InstanceRecord{ID: "x", CreatedAt: time.Unix(0, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeInstanceRecord(EncodeInstanceRecord(tt.rec))
			if err != nil {
				t.Fatal(err)
			}
			if !recordsEqual(tt.rec, got) {
				t.Fatalf("round trip changed the record:\n got %+v\nwant %+v", got, tt.rec)
			}
		})
	}
}

func TestDecodeSkipsUnknownFieldsAndRejectsGarbage(t *testing.T) {
	good := EncodeInstanceRecord(sampleRecord())
	// A newer writer added fields 50 (varint) and 51 (bytes).
	newer := protowire.AppendTag(append([]byte{}, good...), 50, protowire.VarintType)
	newer = protowire.AppendVarint(newer, 7)
	newer = protowire.AppendTag(newer, 51, protowire.BytesType)
	newer = protowire.AppendBytes(newer, []byte("future"))
	got, err := DecodeInstanceRecord(newer)
	if err != nil || !recordsEqual(got, sampleRecord()) {
		t.Fatalf("decoding a record with unknown fields: %v, %+v", err, got)
	}

	bad := map[string][]byte{
		"empty input":             nil,
		"unknown format version":  append([]byte{9}, good[1:]...),
		"truncated":               good[:len(good)-1],
		"status out of range":     protowire.AppendVarint(protowire.AppendTag([]byte{1}, fStatus, protowire.VarintType), 300),
		"generation over uint32":  protowire.AppendVarint(protowire.AppendTag([]byte{1}, fGeneration, protowire.VarintType), 1<<33),
		"string with wrong type":  protowire.AppendVarint(protowire.AppendTag([]byte{1}, fID, protowire.VarintType), 1),
		"failure is not a record": protowire.AppendBytes(protowire.AppendTag([]byte{1}, fFailure, protowire.BytesType), []byte{0xff}),
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeInstanceRecord(data); err == nil {
				t.Fatal("want an error")
			} else if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v does not wrap errCorrupt", err)
			}
		})
	}
}

func FuzzDecodeInstanceRecord(f *testing.F) {
	f.Add(EncodeInstanceRecord(sampleRecord()))
	f.Add(EncodeInstanceRecord(&InstanceRecord{}))
	f.Add(EncodeInstanceRecord(&InstanceRecord{ID: "a", Status: StatusRunning, CreatedAt: time.Now()}))
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeInstanceRecord(data)
		if err != nil {
			return
		}
		again, err := DecodeInstanceRecord(EncodeInstanceRecord(rec))
		if err != nil {
			t.Fatalf("re-decoding an encoded record: %v", err)
		}
		if !recordsEqual(rec, again) {
			t.Fatalf("encode→decode changed the record:\n got %+v\nwant %+v", again, rec)
		}
	})
}

func TestStatusNamesParseBack(t *testing.T) {
	for st := StatusPending; st <= StatusCanceled; st++ {
		for _, name := range []string{st.String(), strings.ToUpper(st.String())} {
			got, err := ParseStatus(name)
			if err != nil || got != st {
				t.Fatalf("ParseStatus(%q) = %v, %v; want %v", name, got, err, st)
			}
		}
	}
	if got, err := ParseStatus("continuedasnew"); err != nil || got != StatusContinuedAsNew {
		t.Fatalf("ParseStatus is not case-insensitive: %v, %v", got, err)
	}
	if _, err := ParseStatus("Sleeping"); err == nil {
		t.Fatal("ParseStatus accepted an unknown name")
	}
	if Status(0).String() != "Status(0)" {
		t.Fatalf("zero status prints %q", Status(0).String())
	}
	terminal := map[Status]bool{StatusCompleted: true, StatusFailed: true, StatusTerminated: true, StatusCanceled: true}
	for st := StatusPending; st <= StatusCanceled; st++ {
		if st.IsTerminal() != terminal[st] {
			t.Fatalf("%v.IsTerminal() = %v", st, st.IsTerminal())
		}
	}
}
