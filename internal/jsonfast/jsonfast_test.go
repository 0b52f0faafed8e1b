package jsonfast

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

func TestMarshalIsEncodingJSONs(t *testing.T) {
	values := []any{"", "Tokyo", "Hello Seattle!", "a<b", "x&y", `q"uote`, "back\\slash", "tab\t", "é", "\u2028", "\xff",
		0, -1, 42, math.MaxInt64, math.MinInt64, int32(-7), uint64(math.MaxUint64), true, false, 1.5, nil, []int{1}, struct{ A int }{1}}
	for _, v := range values {
		got, err := Marshal(v)
		want, wantErr := json.Marshal(v)
		if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
			t.Errorf("Marshal(%#v) = %q, %v; encoding/json: %q, %v", v, got, err, want, wantErr)
		}
	}
}

func TestUnmarshalIsEncodingJSONs(t *testing.T) {
	inputs := []string{`"Tokyo"`, `""`, `"a\"b"`, `"\u00e9"`, `"é"`, " \"x\"", `"x" `, `"unterminated`, `x"`, `"`,
		`0`, `-0`, `7`, `-42`, `007`, `1.0`, `1e3`, `9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `-`, `+1`,
		`true`, `false`, `null`, `TRUE`, ``, `[]`, `{}`}
	for _, in := range inputs {
		checkUnmarshal(t, []byte(in))
	}
}

// checkUnmarshal decodes data into each shortcut type with both decoders
// and fails if they disagree on the value or on whether it is an error.
func checkUnmarshal(t *testing.T, data []byte) {
	t.Helper()
	var s1, s2 string
	var i1, i2 int
	var l1, l2 int64
	var b1, b2 bool
	pairs := []struct {
		fast, std any
		equal     func() bool
	}{
		{&s1, &s2, func() bool { return s1 == s2 }},
		{&i1, &i2, func() bool { return i1 == i2 }},
		{&l1, &l2, func() bool { return l1 == l2 }},
		{&b1, &b2, func() bool { return b1 == b2 }},
	}
	for _, p := range pairs {
		err := Unmarshal(data, p.fast)
		wantErr := json.Unmarshal(data, p.std)
		if (err == nil) != (wantErr == nil) || !p.equal() {
			t.Errorf("Unmarshal(%q) into %T: err %v, encoding/json err %v, values differ: %v", data, p.fast, err, wantErr, !p.equal())
		}
	}
}

func FuzzUnmarshalMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`"Tokyo"`, `12`, `-3`, `true`, `"a\nb"`, `01`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkUnmarshal(t, data) })
}

func FuzzMarshalMatchesEncodingJSON(f *testing.F) {
	f.Add("Tokyo", int64(3))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		for _, v := range []any{s, n, int(n)} {
			got, _ := Marshal(v)
			want, _ := json.Marshal(v)
			if !bytes.Equal(got, want) {
				t.Fatalf("Marshal(%#v) = %q, encoding/json %q", v, got, want)
			}
		}
	})
}
