package persistence

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Status is the runtime status of an orchestration instance. It is stored as
// one byte in the instance record and in the status index key, so the numeric
// values must never change.
type Status uint8

// The runtime statuses of an instance. Zero is deliberately not a valid status.
const (
	StatusPending Status = iota + 1
	StatusRunning
	StatusCompleted
	StatusFailed
	StatusTerminated
	StatusSuspended
	StatusContinuedAsNew
	StatusCanceled
)

var statusNames = [...]string{
	StatusPending:        "Pending",
	StatusRunning:        "Running",
	StatusCompleted:      "Completed",
	StatusFailed:         "Failed",
	StatusTerminated:     "Terminated",
	StatusSuspended:      "Suspended",
	StatusContinuedAsNew: "ContinuedAsNew",
	StatusCanceled:       "Canceled",
}

// String returns the status name, e.g. "Running", or "Status(n)" for an
// unknown value.
func (s Status) String() string {
	if int(s) < len(statusNames) && statusNames[s] != "" {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// ParseStatus parses a status name case-insensitively ("running", "Running").
func ParseStatus(name string) (Status, error) {
	for i, n := range statusNames {
		if n != "" && strings.EqualFold(n, name) {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("unknown instance status %q", name)
}

// IsTerminal reports whether the status is final: Completed, Failed,
// Terminated or Canceled.
func (s Status) IsTerminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusTerminated, StatusCanceled:
		return true
	}
	return false
}

// Failure describes why an instance failed.
type Failure struct {
	ErrorType  string
	Message    string
	StackTrace string
	// Inner is the failure that caused this one (a failed activity's, under
	// the orchestration's), if any.
	Inner *Failure
}

// maxFailureDepth bounds the chain of inner failures a record decodes, so
// a corrupt record cannot make the decoder recurse without end.
const maxFailureDepth = 64

// InstanceRecord is the stored state of one orchestration instance (the i/
// family). The history itself is stored separately, one key per event.
type InstanceRecord struct {
	ID   string
	Name string
	// Version is the version of orchestrator Name the current execution
	// runs: empty for an unversioned orchestrator (and in records written
	// before versions existed).
	Version          string
	ExecutionID      string // uuid of the current execution
	Generation       uint32 // execution number; history keys include it
	Status           Status
	Input            []byte // JSON, may be nil
	Output           []byte // JSON, may be nil
	CustomStatus     []byte // JSON, may be nil
	Failure          *Failure
	CreatedAt        time.Time
	LastUpdatedAt    time.Time
	HistoryLen       uint32 // number of events in the current generation's history
	ParentInstanceID string // for sub-orchestrations (may be empty)
	// ParentExecutionID and ParentTaskID name the parent's execution and the
	// task that awaits this sub-orchestration.
	ParentExecutionID string
	ParentTaskID      int64
	// Flags record which optional indexes the instance has ever used, so an
	// activation skips the scans of the ones it never did.
	Flags RecordFlags
	// HistoryFloor: the histories of generations below it are deleted.
	// Raising it is how a commit deletes old histories whatever their
	// length; their keys are then removed in bounded transactions
	// (Partition.DeleteHistoryBelow) while FlagHistoryGarbage is set.
	HistoryFloor uint32
	// RequestKeys are the idempotency keys of the last client writes
	// applied to the instance (at most MaxRequestKeys, oldest first): a
	// retried request whose key is here has had its effect already.
	RequestKeys []string
}

// MaxRequestKeys bounds InstanceRecord.RequestKeys: a retry arrives within
// seconds of its first attempt, while a few other writes at most have
// reached the instance.
const MaxRequestKeys = 8

// RememberRequestKey adds key (if not empty) to keys, dropping the oldest
// beyond MaxRequestKeys. It appends in place while there is room: the
// records of one instance are copied from its latest, so an element past
// an older copy's length is never part of a record still in use; dropping
// the oldest makes a new array, since it would shift what older copies
// see.
func RememberRequestKey(keys []string, key string) []string {
	switch {
	case key == "":
		return keys
	case len(keys) < MaxRequestKeys:
		return append(keys, key)
	}
	out := make([]string, 0, MaxRequestKeys)
	out = append(out, keys[len(keys)-MaxRequestKeys+1:]...)
	return append(out, key)
}

// recordFormatV1 is the leading format byte of an encoded InstanceRecord.
// A new, incompatible layout gets a new byte; compatible additions are new
// protobuf field numbers, which older decoders skip.
const recordFormatV1 = 1

// RecordFlags are bits of InstanceRecord.Flags.
type RecordFlags uint32

const (
	// FlagUsesInbox: the instance has had inbox (m/) entries.
	FlagUsesInbox RecordFlags = 1 << iota
	// FlagUsesOutbox: the instance has had outbox (o/) entries.
	FlagUsesOutbox
	// FlagHistoryGarbage: history keys of generations below HistoryFloor
	// may still be on disk and are to be removed.
	FlagHistoryGarbage
	// FlagPendingWork: the instance keeps one pending-work entry
	// (Batch.PutPendingWork) while it has open activities or
	// sub-orchestrations. Records without it were written by builds that
	// kept one entry per open task (Batch.PutPendingActivity).
	FlagPendingWork
)

// Field numbers of the InstanceRecord encoding (protobuf wire format). Never
// reuse or renumber.
const (
	fID               protowire.Number = 1
	fName             protowire.Number = 2
	fExecutionID      protowire.Number = 3
	fGeneration       protowire.Number = 4
	fStatus           protowire.Number = 5
	fInput            protowire.Number = 6
	fOutput           protowire.Number = 7
	fCustomStatus     protowire.Number = 8
	fFailure          protowire.Number = 9
	fCreatedAt        protowire.Number = 10 // unix nanos, zigzag; absent = zero time
	fLastUpdatedAt    protowire.Number = 11 // unix nanos, zigzag; absent = zero time
	fHistoryLen       protowire.Number = 12
	fParentInstanceID protowire.Number = 13
	fParentExecution  protowire.Number = 14
	fParentTaskID     protowire.Number = 15 // zigzag
	fFlags            protowire.Number = 16
	fHistoryFloor     protowire.Number = 17
	fRequestKey       protowire.Number = 18 // repeated
	fVersion          protowire.Number = 19

	fFailureErrorType  protowire.Number = 1
	fFailureMessage    protowire.Number = 2
	fFailureStackTrace protowire.Number = 3
	fFailureInner      protowire.Number = 4
)

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt record")

// EncodeInstanceRecord encodes rec in the versioned binary format used on
// disk. Nil byte slices and a nil Failure are omitted (and decode as nil);
// non-nil empty ones are kept, so encode→decode round-trips exactly. Zero
// times are omitted and decode as the zero time.Time; other times are stored
// as unix nanoseconds (location and monotonic reading are not kept).
func EncodeInstanceRecord(rec *InstanceRecord) []byte {
	n := 1 + len(rec.ID) + len(rec.Name) + len(rec.ExecutionID) + len(rec.Input) +
		len(rec.Output) + len(rec.CustomStatus) + len(rec.ParentInstanceID) + 64
	if rec.Failure != nil {
		n += len(rec.Failure.ErrorType) + len(rec.Failure.Message) + len(rec.Failure.StackTrace) + 16
	}
	b := make([]byte, 0, n)
	b = append(b, recordFormatV1)
	b = appendString(b, fID, rec.ID)
	b = appendString(b, fName, rec.Name)
	b = appendString(b, fExecutionID, rec.ExecutionID)
	if rec.Generation != 0 {
		b = protowire.AppendTag(b, fGeneration, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(rec.Generation))
	}
	if rec.Status != 0 {
		b = protowire.AppendTag(b, fStatus, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(rec.Status))
	}
	b = appendBytes(b, fInput, rec.Input)
	b = appendBytes(b, fOutput, rec.Output)
	b = appendBytes(b, fCustomStatus, rec.CustomStatus)
	if f := rec.Failure; f != nil {
		b = protowire.AppendTag(b, fFailure, protowire.BytesType)
		b = protowire.AppendBytes(b, appendFailure(nil, f))
	}
	b = appendTime(b, fCreatedAt, rec.CreatedAt)
	b = appendTime(b, fLastUpdatedAt, rec.LastUpdatedAt)
	if rec.HistoryLen != 0 {
		b = protowire.AppendTag(b, fHistoryLen, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(rec.HistoryLen))
	}
	b = appendString(b, fParentInstanceID, rec.ParentInstanceID)
	b = appendString(b, fParentExecution, rec.ParentExecutionID)
	if rec.ParentTaskID != 0 {
		b = protowire.AppendTag(b, fParentTaskID, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(rec.ParentTaskID))
	}
	if rec.HistoryFloor != 0 {
		b = protowire.AppendTag(b, fHistoryFloor, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(rec.HistoryFloor))
	}
	if rec.Flags != 0 {
		b = protowire.AppendTag(b, fFlags, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(rec.Flags))
	}
	for _, k := range rec.RequestKeys {
		b = protowire.AppendTag(b, fRequestKey, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	b = appendString(b, fVersion, rec.Version)
	return b
}

func appendFailure(b []byte, f *Failure) []byte {
	b = appendString(b, fFailureErrorType, f.ErrorType)
	b = appendString(b, fFailureMessage, f.Message)
	b = appendString(b, fFailureStackTrace, f.StackTrace)
	if f.Inner != nil {
		b = protowire.AppendTag(b, fFailureInner, protowire.BytesType)
		b = protowire.AppendBytes(b, appendFailure(nil, f.Inner))
	}
	return b
}

// DecodeInstanceRecord decodes a record written by EncodeInstanceRecord. It
// never retains data (all byte slices are copied), skips unknown fields, and
// returns an error (never panics) on malformed input.
func DecodeInstanceRecord(data []byte) (*InstanceRecord, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", errCorrupt)
	}
	if data[0] != recordFormatV1 {
		return nil, fmt.Errorf("%w: unknown format version %d", errCorrupt, data[0])
	}
	rec := &InstanceRecord{}
	b := data[1:]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", errCorrupt, protowire.ParseError(n))
		}
		b = b[n:]
		var err error
		switch num {
		case fID:
			rec.ID, b, err = consumeString(b, num, typ)
		case fName:
			rec.Name, b, err = consumeString(b, num, typ)
		case fVersion:
			rec.Version, b, err = consumeString(b, num, typ)
		case fExecutionID:
			rec.ExecutionID, b, err = consumeString(b, num, typ)
		case fParentInstanceID:
			rec.ParentInstanceID, b, err = consumeString(b, num, typ)
		case fParentExecution:
			rec.ParentExecutionID, b, err = consumeString(b, num, typ)
		case fParentTaskID:
			var v uint64
			v, b, err = consumeVarint(b, num, typ, math.MaxUint64)
			rec.ParentTaskID = protowire.DecodeZigZag(v)
		case fFlags:
			var v uint64
			v, b, err = consumeVarint(b, num, typ, math.MaxUint32)
			rec.Flags = RecordFlags(v)
		case fGeneration:
			var v uint64
			v, b, err = consumeVarint(b, num, typ, math.MaxUint32)
			rec.Generation = uint32(v)
		case fHistoryLen:
			var v uint64
			v, b, err = consumeVarint(b, num, typ, math.MaxUint32)
			rec.HistoryLen = uint32(v)
		case fHistoryFloor:
			var v uint64
			v, b, err = consumeVarint(b, num, typ, math.MaxUint32)
			rec.HistoryFloor = uint32(v)
		case fStatus:
			var v uint64
			v, b, err = consumeVarint(b, num, typ, math.MaxUint8)
			rec.Status = Status(v)
		case fInput:
			rec.Input, b, err = consumeBytes(b, num, typ)
		case fOutput:
			rec.Output, b, err = consumeBytes(b, num, typ)
		case fCustomStatus:
			rec.CustomStatus, b, err = consumeBytes(b, num, typ)
		case fCreatedAt:
			rec.CreatedAt, b, err = consumeTime(b, num, typ)
		case fLastUpdatedAt:
			rec.LastUpdatedAt, b, err = consumeTime(b, num, typ)
		case fRequestKey:
			var k string
			k, b, err = consumeString(b, num, typ)
			rec.RequestKeys = append(rec.RequestKeys, k)
		case fFailure:
			var m []byte
			m, b, err = consumeBytes(b, num, typ)
			if err == nil {
				rec.Failure, err = decodeFailure(m, 0)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, fmt.Errorf("%w: field %d: %v", errCorrupt, num, protowire.ParseError(n))
			}
			b = b[n:]
		}
		if err != nil {
			return nil, err
		}
	}
	return rec, nil
}

func decodeFailure(b []byte, depth int) (*Failure, error) {
	if depth >= maxFailureDepth {
		return nil, fmt.Errorf("%w: failure nested deeper than %d", errCorrupt, maxFailureDepth)
	}
	f := &Failure{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: failure: %v", errCorrupt, protowire.ParseError(n))
		}
		b = b[n:]
		var err error
		switch num {
		case fFailureErrorType:
			f.ErrorType, b, err = consumeString(b, num, typ)
		case fFailureMessage:
			f.Message, b, err = consumeString(b, num, typ)
		case fFailureStackTrace:
			f.StackTrace, b, err = consumeString(b, num, typ)
		case fFailureInner:
			var m []byte
			m, b, err = consumeBytes(b, num, typ)
			if err == nil {
				f.Inner, err = decodeFailure(m, depth+1)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, fmt.Errorf("%w: failure field %d: %v", errCorrupt, num, protowire.ParseError(n))
			}
			b = b[n:]
		}
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if v == nil {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendTime(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeZigZag(t.UnixNano()))
}

func consumeString(b []byte, num protowire.Number, typ protowire.Type) (string, []byte, error) {
	v, rest, err := consumeRaw(b, num, typ)
	return string(v), rest, err
}

func consumeBytes(b []byte, num protowire.Number, typ protowire.Type) ([]byte, []byte, error) {
	v, rest, err := consumeRaw(b, num, typ)
	if err != nil {
		return nil, nil, err
	}
	return append(make([]byte, 0, len(v)), v...), rest, nil
}

func consumeRaw(b []byte, num protowire.Number, typ protowire.Type) ([]byte, []byte, error) {
	if typ != protowire.BytesType {
		return nil, nil, fmt.Errorf("%w: field %d has wire type %d, want bytes", errCorrupt, num, typ)
	}
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return nil, nil, fmt.Errorf("%w: field %d: %v", errCorrupt, num, protowire.ParseError(n))
	}
	return v, b[n:], nil
}

func consumeVarint(b []byte, num protowire.Number, typ protowire.Type, max uint64) (uint64, []byte, error) {
	if typ != protowire.VarintType {
		return 0, nil, fmt.Errorf("%w: field %d has wire type %d, want varint", errCorrupt, num, typ)
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, nil, fmt.Errorf("%w: field %d: %v", errCorrupt, num, protowire.ParseError(n))
	}
	if v > max {
		return 0, nil, fmt.Errorf("%w: field %d value %d out of range", errCorrupt, num, v)
	}
	return v, b[n:], nil
}

func consumeTime(b []byte, num protowire.Number, typ protowire.Type) (time.Time, []byte, error) {
	v, rest, err := consumeVarint(b, num, typ, math.MaxUint64)
	if err != nil {
		return time.Time{}, nil, err
	}
	return time.Unix(0, protowire.DecodeZigZag(v)), rest, nil
}
