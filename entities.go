package durable

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/seam"
)

// EntityID names a durable entity: its registered name (case-insensitive)
// and a key.
type EntityID = orchestration.EntityID

// Entity errors callers can test with errors.Is.
var (
	ErrEntityNotFound      = seam.ErrEntityNotFound
	ErrEntityNotRegistered = seam.ErrEntityNotRegistered
	ErrInvalidEntityID     = errors.New("invalid entity id")
)

// RegisterEntity registers a durable entity under name (case-insensitive).
// For an entity whose operations are the methods of a struct, pass
// orchestration.EntityFromStruct[T]().
func (r *Runtime) RegisterEntity(name string, fn orchestration.EntityFunc) error {
	if err := validateEntityName(name); err != nil || fn == nil {
		return fmt.Errorf("register entity %q: %w", name, ErrInvalidInput)
	}
	return r.reg.addEntity(name, fn)
}

func validateEntityName(name string) error {
	if name == "" || strings.ContainsAny(name, "@/\\#?") || len(name) > 128 {
		return fmt.Errorf("%w: bad name %q", ErrInvalidEntityID, name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: bad name %q", ErrInvalidEntityID, name)
		}
	}
	return nil
}

// ValidateEntityID checks an entity id: a valid name and a key of at most
// 256 characters without control characters.
func ValidateEntityID(id EntityID) error {
	if err := validateEntityName(id.Name); err != nil {
		return err
	}
	if len(id.Key) > MaxInstanceIDLength {
		return fmt.Errorf("%w: key longer than %d", ErrInvalidEntityID, MaxInstanceIDLength)
	}
	for _, r := range id.Key {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: key %q contains a control character", ErrInvalidEntityID, id.Key)
		}
	}
	return nil
}

// checkEntity validates an entity id and that its name is registered (in
// Go, or by a remote worker).
func (c *Client) checkEntity(id EntityID) error {
	if err := ValidateEntityID(id); err != nil {
		return err
	}
	if !c.rt.reg.entityKnown(id.Name) {
		return fmt.Errorf("entity %q: %w", id.Name, ErrEntityNotRegistered)
	}
	return nil
}

// SignalEntity sends operation op with input (JSON) to an entity, one way,
// and returns once the signal is durable: applied, or queued behind a
// critical section. Operations of one entity run one at a time in arrival
// order.
func (c *Client) SignalEntity(ctx context.Context, id EntityID, op string, input any) error {
	if err := c.checkEntity(id); err != nil {
		return err
	}
	b, err := c.encodePayload(input)
	if err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	_, err = c.call(ctx, &seam.Request{Op: &seam.Request_SignalEntity{SignalEntity: &seam.SignalEntity{EntityId: id.String(), Operation: op, Input: b}}})
	return err
}

// DeleteEntity deletes an entity's state, whatever its code does.
func (c *Client) DeleteEntity(ctx context.Context, id EntityID) error {
	if err := c.checkEntity(id); err != nil {
		return err
	}
	_, err := c.call(ctx, &seam.Request{Op: &seam.Request_SignalEntity{SignalEntity: &seam.SignalEntity{EntityId: id.String(), Delete: true}}})
	return err
}

// EntityMetadata describes one entity of a listing.
type EntityMetadata struct {
	ID                EntityID
	LastOperationTime time.Time
	// State is set when the query asked for it.
	State json.RawMessage
}

// ReadEntityState returns an entity's committed state (JSON), or
// ErrEntityNotFound if it has none.
func (c *Client) ReadEntityState(ctx context.Context, id EntityID) (json.RawMessage, error) {
	if err := ValidateEntityID(id); err != nil {
		return nil, err
	}
	resp, err := c.call(ctx, &seam.Request{Op: &seam.Request_GetEntity{GetEntity: &seam.GetEntity{EntityId: id.String()}}})
	if err != nil {
		return nil, err
	}
	if !resp.GetEntity().GetHasState() {
		return nil, fmt.Errorf("%s: %w", id, ErrEntityNotFound)
	}
	return resp.GetEntity().GetState(), nil
}

// EntityQuery selects entities for ListEntities.
type EntityQuery struct {
	// Name keeps entities of this name (case-insensitive); empty: all.
	Name string
	// LastOperationFrom and LastOperationTo bound the time of the last
	// operation (inclusive; zero: unbounded).
	LastOperationFrom, LastOperationTo time.Time
	// FetchState includes each entity's state.
	FetchState        bool
	PageSize          int
	ContinuationToken string
}

// EntityPage is one page of entities, in id order.
type EntityPage struct {
	Entities          []EntityMetadata
	ContinuationToken string
	// PartitionsDown lists the partitions that are down (ErrPartitionDown):
	// their entities are missing from the listing. Empty when every
	// partition answered.
	PartitionsDown []int
}

// ListEntities returns the entities that have state and match q, a page at
// a time.
func (c *Client) ListEntities(ctx context.Context, q EntityQuery) (*EntityPage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	size, err := pageSize(q.PageSize)
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(q.Name)
	prefix := "@"
	if name != "" {
		prefix = "@" + name + "@"
	}
	after := ""
	if q.ContinuationToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.ContinuationToken)
		if err != nil || !strings.HasPrefix(string(b), prefix) {
			return nil, fmt.Errorf("%w: malformed continuation token", ErrInvalidInput)
		}
		after = string(b)
	}
	// Each partition gives its first size+1 entities with state after the
	// cursor; the merged first size are the page.
	answers, down, err := c.eachPartition(ctx, true, func(p int32) *seam.Request {
		return &seam.Request{Op: &seam.Request_ListEntities{ListEntities: &seam.ListEntities{
			Partition: p, Name: name, After: after, Limit: int32(size + 1),
			LastOperationFromUnixNano: unixNanoOf(q.LastOperationFrom), LastOperationToUnixNano: unixNanoOf(q.LastOperationTo),
			FetchState: q.FetchState,
		}}}
	})
	if err != nil {
		return nil, err
	}
	var hits []*seam.EntityState
	for _, resp := range answers {
		hits = append(hits, resp.GetEntities()...)
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].GetEntityId() < hits[j].GetEntityId() })
	page := &EntityPage{PartitionsDown: down}
	if len(hits) > size {
		hits = hits[:size]
		page.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(hits[size-1].GetEntityId()))
	}
	for _, h := range hits {
		id, err := orchestration.ParseEntityID(h.GetEntityId())
		if err != nil {
			return nil, err
		}
		md := EntityMetadata{ID: id, LastOperationTime: timeFromUnixNano(h.GetLastOperationUnixNano())}
		if q.FetchState {
			md.State = h.GetState()
		}
		page.Entities = append(page.Entities, md)
	}
	return page, nil
}
