package durable

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/durable-go/durable/persistence"
)

// Query selects instances for Client.List. Zero fields select all.
type Query struct {
	// Statuses keeps instances in any of these runtime statuses.
	Statuses []RuntimeStatus
	// CreatedFrom and CreatedTo bound the creation time, inclusive.
	CreatedFrom, CreatedTo time.Time
	// InstanceIDPrefix keeps ids that start with it.
	InstanceIDPrefix string
	// PageSize is the most instances returned (default 100, at most 1000).
	PageSize int
	// ContinuationToken continues a listing where the previous page ended.
	ContinuationToken string
}

// Page is one page of a listing, in creation-time order.
type Page struct {
	Instances []*Status
	// ContinuationToken is empty on the last page.
	ContinuationToken string
}

// MaxPageSize bounds Query.PageSize and EntityQuery.PageSize.
const MaxPageSize = 1000

// pageSize applies the default (100) and the bound of a page size.
func pageSize(n int) (int, error) {
	switch {
	case n <= 0:
		return 100, nil
	case n > MaxPageSize:
		return 0, fmt.Errorf("%w: page size %d over %d", ErrInvalidInput, n, MaxPageSize)
	}
	return n, nil
}

// List returns the instances that match q, a page at a time, read from the
// store's created-time index (no scan of all instances when a time range is
// given).
func (c *Client) List(ctx context.Context, q Query) (*Page, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	size, err := pageSize(q.PageSize)
	if err != nil {
		return nil, err
	}
	f := persistence.ListFilter{CreatedFrom: q.CreatedFrom, CreatedTo: q.CreatedTo, IDPrefix: q.InstanceIDPrefix}
	for _, s := range q.Statuses {
		st, err := persistence.ParseStatus(string(s))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
		f.Statuses = append(f.Statuses, st)
	}
	after, err := decodeToken(q.ContinuationToken)
	if err != nil {
		return nil, err
	}
	// Each partition gives its first size+1 matches after the cursor; the
	// merged first size are the page, and a size+1th says there is more.
	var all []*persistence.InstanceRecord
	for i := 0; i < c.rt.hub.Partitions(); i++ {
		recs, err := c.rt.hub.Partition(i).ListInstances(f, after, size+1)
		if err != nil {
			return nil, err
		}
		all = append(all, recs...)
	}
	sort.Slice(all, func(i, j int) bool {
		return persistence.CursorOf(all[i]).Less(persistence.CursorOf(all[j]))
	})
	page := &Page{}
	if len(all) > size {
		all = all[:size]
		page.ContinuationToken = encodeToken(persistence.CursorOf(all[size-1]))
	}
	for _, rec := range all {
		page.Instances = append(page.Instances, statusFromRecord(rec))
	}
	return page, nil
}

func encodeToken(c persistence.ListCursor) string {
	b := binary.BigEndian.AppendUint64(nil, c.CreatedNanos)
	return base64.RawURLEncoding.EncodeToString(append(b, c.ID...))
}

func decodeToken(tok string) (*persistence.ListCursor, error) {
	if tok == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 9 {
		return nil, fmt.Errorf("%w: malformed continuation token", ErrInvalidInput)
	}
	return &persistence.ListCursor{CreatedNanos: binary.BigEndian.Uint64(b), ID: string(b[8:])}, nil
}
