// Package jsonfast is encoding/json's Marshal and Unmarshal with shortcuts
// for the payloads that most activities and orchestrations pass: plain
// strings, integers and booleans. A shortcut is taken only where its bytes
// (or its value) are exactly what encoding/json would give; everything else
// goes to encoding/json. The shortcuts skip reflection and the encoder's
// state, and keep the stack shallow on the fresh goroutines activities run
// on, where a full decode makes the stack grow.
package jsonfast

import (
	"encoding/json"
	"strconv"
)

// Marshal returns the JSON encoding of v, as json.Marshal does.
func Marshal(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		if b, ok := appendPlainString(nil, x); ok {
			return b, nil
		}
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case int32:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(nil, x, 10), nil
	case bool:
		return strconv.AppendBool(nil, x), nil
	}
	return json.Marshal(v)
}

// Unmarshal decodes data into v, as json.Unmarshal does.
func Unmarshal(data []byte, v any) error {
	switch p := v.(type) {
	case *string:
		if s, ok := plainString(data); ok {
			*p = s
			return nil
		}
	case *int:
		if n, ok := plainInt(data, strconv.IntSize); ok {
			*p = int(n)
			return nil
		}
	case *int64:
		if n, ok := plainInt(data, 64); ok {
			*p = n
			return nil
		}
	case *bool:
		switch string(data) {
		case "true":
			*p = true
			return nil
		case "false":
			*p = false
			return nil
		}
	}
	return json.Unmarshal(data, v)
}

// plain reports whether c stands for itself inside a JSON string as
// encoding/json writes one: printable ASCII other than the quote, the
// backslash and the characters it escapes for HTML.
func plain(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

func appendPlainString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			return nil, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

// plainString returns the string data encodes if data is a quoted string
// of plain characters and nothing else.
func plainString(data []byte) (string, bool) {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return "", false
	}
	inner := data[1 : len(data)-1]
	for _, c := range inner {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(inner), true
}

// plainInt returns the integer data encodes if data is a JSON integer
// (no fraction, no exponent, no leading zero) that fits in bits.
func plainInt(data []byte, bits int) (int64, bool) {
	digits := data
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 19 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(data), 10, bits)
	return n, err == nil
}
