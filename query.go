package durable

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/durable-go/durable/seam"
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
	// PartitionsDown lists the partitions that are down (their store could
	// not be opened: ErrPartitionDown): their instances are missing from
	// the listing, which the other partitions serve. Empty when every
	// partition answered.
	PartitionsDown []int
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
// given). Every partition is asked for its first matches after the cursor;
// the merge of their answers is the page.
func (c *Client) List(ctx context.Context, q Query) (*Page, error) {
	size, err := pageSize(q.PageSize)
	if err != nil {
		return nil, err
	}
	filter, err := seamFilter(q.Statuses, q.CreatedFrom, q.CreatedTo)
	if err != nil {
		return nil, err
	}
	filter.InstanceIdPrefix = q.InstanceIDPrefix
	after, err := decodeToken(q.ContinuationToken)
	if err != nil {
		return nil, err
	}
	// Each partition gives its first size+1 matches after the cursor; the
	// merged first size are the page, and a size+1th says there is more.
	answers, down, err := c.eachPartition(ctx, true, func(p int32) *seam.Request {
		return &seam.Request{Op: &seam.Request_ListInstances{ListInstances: &seam.ListInstances{
			Partition: p, Filter: filter, After: after, Limit: int32(size + 1),
		}}}
	})
	if err != nil {
		return nil, err
	}
	var all []*seam.InstanceStatus
	for _, resp := range answers {
		all = append(all, resp.GetInstances()...)
	}
	sort.Slice(all, func(i, j int) bool { return cursorLess(cursorOf(all[i]), cursorOf(all[j])) })
	page := &Page{PartitionsDown: down}
	if len(all) > size {
		all = all[:size]
		page.ContinuationToken = encodeToken(cursorOf(all[size-1]))
	}
	for _, st := range all {
		page.Instances = append(page.Instances, statusFromSeam(st))
	}
	return page, nil
}

// eachPartition sends the request build makes for each partition to all of
// them at once (in a cluster they are on several nodes) and returns their
// answers in partition order, with the first error. An answer that carries
// an error may carry partial results too (a purge's count). With skipDown,
// a partition that answers ErrPartitionDown is no error: it is left out of
// the answers (nil) and listed in down, so that a listing serves the
// healthy partitions.
func (c *Client) eachPartition(ctx context.Context, skipDown bool, build func(p int32) *seam.Request) (answers []*seam.Response, down []int, err error) {
	parts, err := c.rt.partitions()
	if err != nil {
		return nil, nil, err
	}
	answers = make([]*seam.Response, parts.Count())
	errs := make([]error, parts.Count())
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = c.call(ctx, build(int32(i)))
		}()
	}
	wg.Wait()
	var first error
	for i, err := range errs {
		switch {
		case err == nil:
		case skipDown && errors.Is(err, ErrPartitionDown):
			answers[i] = nil
			down = append(down, i)
		case first == nil:
			first = err
		}
	}
	return answers, down, first
}

// seamFilter is the seam's form of a filter by statuses and created time.
func seamFilter(statuses []RuntimeStatus, from, to time.Time) (*seam.InstanceFilter, error) {
	f := &seam.InstanceFilter{CreatedFromUnixNano: unixNanoOf(from), CreatedToUnixNano: unixNanoOf(to)}
	for _, s := range statuses {
		st, err := seamStatus(s)
		if err != nil {
			return nil, err
		}
		f.Statuses = append(f.Statuses, st)
	}
	return f, nil
}

// cursorOf is the position of an instance in the listing order: created
// time, then id (the order of the store's created-time index).
func cursorOf(st *seam.InstanceStatus) *seam.ListCursor {
	return &seam.ListCursor{CreatedUnixNano: st.GetCreatedUnixNano(), InstanceId: st.GetInstanceId()}
}

func cursorLess(a, b *seam.ListCursor) bool {
	if a.GetCreatedUnixNano() != b.GetCreatedUnixNano() {
		return uint64(a.GetCreatedUnixNano()) < uint64(b.GetCreatedUnixNano())
	}
	return a.GetInstanceId() < b.GetInstanceId()
}

func encodeToken(c *seam.ListCursor) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(c.GetCreatedUnixNano()))
	return base64.RawURLEncoding.EncodeToString(append(b, c.GetInstanceId()...))
}

func decodeToken(tok string) (*seam.ListCursor, error) {
	if tok == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 9 {
		return nil, fmt.Errorf("%w: malformed continuation token", ErrInvalidInput)
	}
	return &seam.ListCursor{CreatedUnixNano: int64(binary.BigEndian.Uint64(b)), InstanceId: string(b[8:])}, nil
}
