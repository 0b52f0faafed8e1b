package actors

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeEntityRecord: a stored entity record either decodes, and
// encodes back to a record that decodes the same, or is an error; never a
// panic.
func FuzzDecodeEntityRecord(f *testing.F) {
	for _, s := range []string{`{}`, `{"state":1}`, `null`, `[]`, `{"lock":{"owner":"o","execution":"e","taskId":3,"set":["@a@b"]}}`, `{"state":`, "\xff", ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeEntityRecord(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("encode a decoded record: %v", err)
		}
		again, err := DecodeEntityRecord(b)
		if err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		b2, _ := json.Marshal(again)
		if !reflect.DeepEqual(b, b2) {
			t.Fatalf("encode→decode changed the record: %s → %s", b, b2)
		}
	})
}

// TestEntityRecordEncodesAsJSONMarshalDoes: the stored form decodes to the
// same record as json.Marshal's, and is the same bytes when the state is
// compact.
func TestEntityRecordEncodesAsJSONMarshalDoes(t *testing.T) {
	at := time.Date(2026, 12, 2, 6, 7, 8, 123456789, time.UTC)
	tests := []struct {
		name string
		rec  EntityRecord
		same bool // byte for byte what json.Marshal writes
	}{
		{"empty", EntityRecord{}, true},
		{"state", EntityRecord{State: json.RawMessage(`{"value":3}`), HasState: true, LastOp: at}, true},
		{"state with HTML characters", EntityRecord{State: json.RawMessage(`"\u003cb\u003e"`), HasState: true, LastOp: at}, true},
		{"state with spaces", EntityRecord{State: json.RawMessage(`{ "value" : 3 }`), HasState: true, LastOp: at}, false},
		{"whole seconds", EntityRecord{State: json.RawMessage(`1`), HasState: true, LastOp: at.Truncate(time.Second)}, true},
		{"another zone", EntityRecord{State: json.RawMessage(`1`), HasState: true, LastOp: at.In(time.FixedZone("x", 3600))}, true},
		{"locked", EntityRecord{LastOp: at, Lock: &EntityLock{Owner: "o", Execution: "e", TaskID: 2, Set: []string{"@a@b"}}}, true},
		{"keys", EntityRecord{State: json.RawMessage(`2`), HasState: true, LastOp: at, Keys: []string{"k1"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.rec.encode()
			want, err := json.Marshal(&tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			if tt.same && string(got) != string(want) {
				t.Fatalf("encode: %s\njson.Marshal: %s", got, want)
			}
			a, errA := DecodeEntityRecord(got)
			b, errB := DecodeEntityRecord(want)
			if errA != nil || errB != nil {
				t.Fatalf("decode: %v, %v", errA, errB)
			}
			var sa, sb any
			_ = json.Unmarshal(a.State, &sa)
			_ = json.Unmarshal(b.State, &sb)
			a.State, b.State = nil, nil
			if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(sa, sb) {
				t.Fatalf("decoded %+v (state %v), want %+v (state %v)", a, sa, b, sb)
			}
		})
	}
}
