// Package seam is the partition seam: the one interface through which a
// client reaches the partition that owns an instance or an entity, whether
// that partition runs in this process (actors.Node) or on another node of a
// cluster.
//
// What crosses the seam is protobuf (seam.proto): a Request names one
// operation and its target, a Response carries the result or an Error whose
// code maps to one error value of this package. Every write carries an
// idempotency key, so a retried request has one effect. A wait for an
// instance's end is a subscription held by the owning partition, answered
// when the instance's final commit is durable.
//
// Callers above the seam (the root package's Client, and through it the HTTP
// API and the command line) never read the store, and never compute which
// partition owns an id: PartitionOf does, here, for every implementation.
package seam

//go:generate protoc --go_out=. --go_opt=paths=source_relative seam.proto

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/durable-go/durable/persistence"
)

// Partitions is everything a client needs from the partitions of a task
// hub. Implementations: the local node (actors.Node) and the cluster.
type Partitions interface {
	// Count returns the hub's partition count, fixed at its creation.
	Count() int
	// Call sends req to the partition that owns its target (PartitionOf)
	// and returns the answer. An error answer comes back as an error that
	// wraps this package's error value for its code (errors.Is works on
	// both sides of a process boundary), with the response if the answer
	// carries partial results (a purge's count); a canceled ctx or an
	// unreachable partition is an error too.
	Call(ctx context.Context, req *Request) (*Response, error)
}

// PartitionOf returns the partition of n that must serve req: the owner of
// its instance or entity id, or the partition a fan-out request (a listing
// or a purge by filter) names.
func PartitionOf(req *Request, n int) (int, error) {
	if id := TargetID(req); id != "" {
		return persistence.PartitionOf(id, n), nil
	}
	var p int32
	switch op := req.GetOp().(type) {
	case *Request_ListInstances:
		p = op.ListInstances.GetPartition()
	case *Request_ListEntities:
		p = op.ListEntities.GetPartition()
	case *Request_PurgeInstances:
		p = op.PurgeInstances.GetPartition()
	case *Request_Ping:
		p = op.Ping.GetPartition()
	case nil:
		return 0, fmt.Errorf("%w: request has no operation", ErrInvalidInput)
	default:
		return 0, fmt.Errorf("%w: request has no target id", ErrInvalidInput)
	}
	if p < 0 || int(p) >= n {
		return 0, fmt.Errorf("%w: partition %d of %d", ErrInvalidInput, p, n)
	}
	return int(p), nil
}

// TargetID returns the instance or entity id req addresses, or "" for a
// request addressed to a partition as a whole.
func TargetID(req *Request) string {
	switch op := req.GetOp().(type) {
	case *Request_StartInstance:
		return op.StartInstance.GetInstanceId()
	case *Request_RaiseEvent:
		return op.RaiseEvent.GetInstanceId()
	case *Request_ControlInstance:
		return op.ControlInstance.GetInstanceId()
	case *Request_SignalEntity:
		return op.SignalEntity.GetEntityId()
	case *Request_GetInstance:
		return op.GetInstance.GetInstanceId()
	case *Request_GetHistory:
		return op.GetHistory.GetInstanceId()
	case *Request_GetEntity:
		return op.GetEntity.GetEntityId()
	case *Request_WaitForInstance:
		return op.WaitForInstance.GetInstanceId()
	}
	return ""
}

// IsWrite reports whether req changes state, and so must carry an
// idempotency key.
func IsWrite(req *Request) bool {
	switch req.GetOp().(type) {
	case *Request_StartInstance, *Request_RaiseEvent, *Request_ControlInstance, *Request_SignalEntity, *Request_PurgeInstances:
		return true
	}
	return false
}

// NewIdempotencyKey returns a fresh key for a write: 64 random bits,
// base64url-encoded (11 characters). Keys only need to differ among the
// few writes that reach one instance or entity while a retry may still
// arrive, and they are stored in records, so they are short; a fast
// generator, not crypto/rand, since every client write makes one.
func NewIdempotencyKey() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return base64.RawURLEncoding.EncodeToString(b[:])
}
