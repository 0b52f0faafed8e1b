package actors

import (
	"encoding/json"
	"reflect"
	"testing"
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
