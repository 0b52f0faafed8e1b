package persistence

import "testing"

// FuzzParseOwnerRecord: an ownership record read from the shared
// filesystem (which another node may be writing) either parses or is an
// error; never a panic.
func FuzzParseOwnerRecord(f *testing.F) {
	for _, s := range []string{`{"epoch":3,"owner":"n1"}`, `{}`, `{"epoch":-1}`, `{"epoch":1e30}`, `null`, `{"epoch":`, "\x00\x00", ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := parseOwnerRecord(data)
		if err == nil && (rec.Epoch == 0 || rec.Owner == "" || rec.Claim == "" || rec.Format != ownerFormat) {
			t.Fatalf("%q parsed to an incomplete record %+v", data, rec)
		}
	})
}
