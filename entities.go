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

	"github.com/durable-go/durable/actors"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
)

// EntityID names a durable entity: its registered name (case-insensitive)
// and a key.
type EntityID = orchestration.EntityID

// Entity errors callers can test with errors.Is.
var (
	ErrEntityNotFound      = errors.New("entity not found")
	ErrEntityNotRegistered = errors.New("entity is not registered")
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

func (c *Client) entityNode(id EntityID) (*actors.Node, error) {
	if err := ValidateEntityID(id); err != nil {
		return nil, err
	}
	if _, ok := c.rt.reg.Entity(id.Name); !ok {
		return nil, fmt.Errorf("entity %q: %w", id.Name, ErrEntityNotRegistered)
	}
	return c.rt.runningNode()
}

// SignalEntity sends operation op with input (JSON) to an entity, one way,
// and returns once the signal is durable: applied, or queued behind a
// critical section. Operations of one entity run one at a time in arrival
// order.
func (c *Client) SignalEntity(ctx context.Context, id EntityID, op string, input any) error {
	node, err := c.entityNode(id)
	if err != nil {
		return err
	}
	b, err := c.encodePayload(input)
	if err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	return mapNodeError(node.SignalEntity(ctx, id, op, b))
}

// DeleteEntity deletes an entity's state, whatever its code does.
func (c *Client) DeleteEntity(ctx context.Context, id EntityID) error {
	node, err := c.entityNode(id)
	if err != nil {
		return err
	}
	return mapNodeError(node.DeleteEntity(ctx, id))
}

// EntityMetadata describes one entity of a listing.
type EntityMetadata struct {
	ID                EntityID
	LastOperationTime time.Time
	// State is set when the query asked for it.
	State json.RawMessage
}

func (c *Client) loadEntity(id EntityID) (*actors.EntityRecord, error) {
	if err := ValidateEntityID(id); err != nil {
		return nil, err
	}
	key := id.String()
	data, err := c.rt.hub.Partition(c.rt.hub.PartitionOf(key)).LoadEntity(key)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", key, ErrEntityNotFound)
	}
	if errors.Is(err, persistence.ErrClosed) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, err
	}
	return actors.DecodeEntityRecord(data)
}

// ReadEntityState returns an entity's committed state (JSON), or
// ErrEntityNotFound if it has none.
func (c *Client) ReadEntityState(ctx context.Context, id EntityID) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec, err := c.loadEntity(id)
	if err != nil {
		return nil, err
	}
	if !rec.HasState {
		return nil, fmt.Errorf("%s: %w", id, ErrEntityNotFound)
	}
	return rec.State, nil
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
	prefix := "@"
	if q.Name != "" {
		prefix = "@" + strings.ToLower(q.Name) + "@"
	}
	after := ""
	if q.ContinuationToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.ContinuationToken)
		if err != nil || !strings.HasPrefix(string(b), prefix) {
			return nil, fmt.Errorf("%w: malformed continuation token", ErrInvalidInput)
		}
		after = string(b)
	}
	type hit struct {
		id  string
		rec *actors.EntityRecord
	}
	var hits []hit
	for i := 0; i < c.rt.hub.Partitions(); i++ {
		p := c.rt.hub.Partition(i)
		cursor := after
		found := 0
		// Records without state (kept for de-duplication) are skipped, so
		// read on until size+1 matches or the partition is exhausted.
		for found <= size {
			entries, err := p.ListEntities(prefix, cursor, size+1)
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				rec, err := actors.DecodeEntityRecord(e.Data)
				if err != nil {
					return nil, fmt.Errorf("entity %s: %w", e.ID, err)
				}
				if !rec.HasState || (!q.LastOperationFrom.IsZero() && rec.LastOp.Before(q.LastOperationFrom)) ||
					(!q.LastOperationTo.IsZero() && rec.LastOp.After(q.LastOperationTo)) {
					continue
				}
				hits = append(hits, hit{e.ID, rec})
				found++
			}
			if len(entries) < size+1 {
				break
			}
			cursor = entries[len(entries)-1].ID
		}
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].id < hits[j].id })
	page := &EntityPage{}
	if len(hits) > size {
		hits = hits[:size]
		page.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(hits[size-1].id))
	}
	for _, h := range hits {
		id, err := orchestration.ParseEntityID(h.id)
		if err != nil {
			return nil, err
		}
		md := EntityMetadata{ID: id, LastOperationTime: h.rec.LastOp}
		if q.FetchState {
			md.State = h.rec.State
		}
		page.Entities = append(page.Entities, md)
	}
	return page, nil
}
