package history

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// formatVersion leads every encoded event. Fields are protobuf wire fields,
// so adding a field is not a format change: decoders skip what they do not
// know. The version byte changes only if the framing itself ever must.
const formatVersion = 1

// Field numbers of the encoding. Never renumber or reuse.
const (
	fType             = 1
	fTimestamp        = 2
	fTaskID           = 3
	fName             = 4
	fPayload          = 5
	fFailure          = 6
	fInstanceID       = 7
	fExecutionID      = 8
	fFireAt           = 9
	fReason           = 10
	fTraceParent      = 16 // (15 is taken by the versions work)
	fParentInstanceID = 11
	fParentTaskID     = 12
	fAttempt          = 13
	fParentExecution  = 14
	fVersion          = 15

	fFailureType    = 1
	fFailureMessage = 2
	fFailureStack   = 3
	fFailureInner   = 4
)

// maxFailureDepth bounds nested inner failures so a hostile input cannot
// recurse the decoder into a stack overflow.
const maxFailureDepth = 32

// ErrCorrupt is returned for bytes that are not an encoded event.
var ErrCorrupt = errors.New("corrupt history event")

// Marshal encodes the event.
func Marshal(e *Event) []byte {
	return AppendMarshal(make([]byte, 0, 32+len(e.Name)+len(e.Payload)), e)
}

// AppendMarshal appends the encoding of e to b.
func AppendMarshal(b []byte, e *Event) []byte {
	b = append(b, formatVersion)
	b = protowire.AppendTag(b, fType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(e.Type))
	b = appendTime(b, fTimestamp, e.Timestamp)
	if e.TaskID != 0 {
		b = protowire.AppendTag(b, fTaskID, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(e.TaskID))
	}
	b = appendString(b, fName, e.Name)
	if e.Payload != nil {
		b = protowire.AppendTag(b, fPayload, protowire.BytesType)
		b = protowire.AppendBytes(b, e.Payload)
	}
	if e.Failure != nil {
		b = protowire.AppendTag(b, fFailure, protowire.BytesType)
		b = protowire.AppendBytes(b, appendFailure(nil, e.Failure))
	}
	b = appendString(b, fInstanceID, e.InstanceID)
	b = appendString(b, fExecutionID, e.ExecutionID)
	b = appendTime(b, fFireAt, e.FireAt)
	b = appendString(b, fReason, e.Reason)
	b = appendString(b, fTraceParent, e.TraceParent)
	b = appendString(b, fParentInstanceID, e.ParentInstanceID)
	if e.ParentTaskID != 0 {
		b = protowire.AppendTag(b, fParentTaskID, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(e.ParentTaskID))
	}
	if e.Attempt != 0 {
		b = protowire.AppendTag(b, fAttempt, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(e.Attempt))
	}
	b = appendString(b, fParentExecution, e.ParentExecutionID)
	b = appendString(b, fVersion, e.Version)
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendTime(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeZigZag(t.UnixNano()))
}

func appendFailure(b []byte, f *Failure) []byte {
	b = appendString(b, fFailureType, f.ErrorType)
	b = appendString(b, fFailureMessage, f.Message)
	b = appendString(b, fFailureStack, f.StackTrace)
	if f.Inner != nil {
		b = protowire.AppendTag(b, fFailureInner, protowire.BytesType)
		b = protowire.AppendBytes(b, appendFailure(nil, f.Inner))
	}
	return b
}

// Unmarshal decodes an event. It never panics: bytes that are not a valid
// encoding give an error wrapping ErrCorrupt.
func Unmarshal(data []byte) (*Event, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	if data[0] != formatVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrCorrupt, data[0])
	}
	e := &Event{}
	err := walk(data[1:], func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		switch {
		case num == fType && typ == protowire.VarintType:
			if v > 255 {
				return fmt.Errorf("event type %d out of range", v)
			}
			e.Type = Type(v)
		case num == fTimestamp && typ == protowire.VarintType:
			e.Timestamp = time.Unix(0, protowire.DecodeZigZag(v)).UTC()
		case num == fTaskID && typ == protowire.VarintType:
			e.TaskID = protowire.DecodeZigZag(v)
		case num == fName && typ == protowire.BytesType:
			e.Name = string(raw)
		case num == fPayload && typ == protowire.BytesType:
			e.Payload = append([]byte{}, raw...)
		case num == fFailure && typ == protowire.BytesType:
			f, err := decodeFailure(raw, 0)
			if err != nil {
				return err
			}
			e.Failure = f
		case num == fInstanceID && typ == protowire.BytesType:
			e.InstanceID = string(raw)
		case num == fExecutionID && typ == protowire.BytesType:
			e.ExecutionID = string(raw)
		case num == fFireAt && typ == protowire.VarintType:
			e.FireAt = time.Unix(0, protowire.DecodeZigZag(v)).UTC()
		case num == fReason && typ == protowire.BytesType:
			e.Reason = string(raw)
		case num == fTraceParent && typ == protowire.BytesType:
			e.TraceParent = string(raw)
		case num == fParentInstanceID && typ == protowire.BytesType:
			e.ParentInstanceID = string(raw)
		case num == fParentTaskID && typ == protowire.VarintType:
			e.ParentTaskID = protowire.DecodeZigZag(v)
		case num == fAttempt && typ == protowire.VarintType:
			if v > 1<<31-1 {
				return fmt.Errorf("attempt %d out of range", v)
			}
			e.Attempt = int32(v)
		case num == fParentExecution && typ == protowire.BytesType:
			e.ParentExecutionID = string(raw)
		case num == fVersion && typ == protowire.BytesType:
			e.Version = string(raw)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if e.Type == 0 {
		return nil, fmt.Errorf("%w: no event type", ErrCorrupt)
	}
	return e, nil
}

func decodeFailure(data []byte, depth int) (*Failure, error) {
	if depth > maxFailureDepth {
		return nil, fmt.Errorf("failure nested deeper than %d", maxFailureDepth)
	}
	f := &Failure{}
	err := walk(data, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fFailureType:
			f.ErrorType = string(raw)
		case fFailureMessage:
			f.Message = string(raw)
		case fFailureStack:
			f.StackTrace = string(raw)
		case fFailureInner:
			inner, err := decodeFailure(raw, depth+1)
			if err != nil {
				return err
			}
			f.Inner = inner
		}
		return nil
	})
	return f, err
}

// walk visits each field of a protobuf wire message. Varint fields arrive in
// v, length-delimited ones in raw; other wire types are skipped.
func walk(data []byte, visit func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrCorrupt, protowire.ParseError(n))
		}
		data = data[n:]
		var (
			v   uint64
			raw []byte
		)
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(data)
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(data)
		default:
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrCorrupt, num, protowire.ParseError(n))
		}
		data = data[n:]
		if err := visit(num, typ, v, raw); err != nil {
			if errors.Is(err, ErrCorrupt) {
				return err
			}
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	return nil
}
