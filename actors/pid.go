package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/seam"
)

// PIDPartitions implements seam.Partitions by sending each *seam.Request to
// the PID of its partition's actor and waiting for the *seam.Response, the
// way a caller in another process reaches a node (the PIDs may be remote).
type PIDPartitions struct {
	// Root sends the requests (the caller's actor system).
	Root *actor.RootContext
	// PIDs are the partition actors, by partition number: on a node, its
	// actors are named PartitionActorName(i).
	PIDs []*actor.PID
	// Timeout bounds a call whose ctx has no deadline (default 30 s). A
	// wait subscribes again each time it runs out, until ctx ends.
	Timeout time.Duration
}

// PartitionActorName is the name under which a node registers the actor of
// partition i, so a caller that knows the node's address can reach it with
// actor.NewPID(address, PartitionActorName(i)).
func PartitionActorName(i int) string { return fmt.Sprintf("partition-%d", i) }

// Count implements seam.Partitions.
func (c *PIDPartitions) Count() int { return len(c.PIDs) }

// Call implements seam.Partitions.
func (c *PIDPartitions) Call(ctx context.Context, req *seam.Request) (*seam.Response, error) {
	p, err := seam.PartitionOf(req, len(c.PIDs))
	if err != nil {
		return nil, err
	}
	for {
		timeout := c.Timeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		if deadline, ok := ctx.Deadline(); ok {
			timeout = time.Until(deadline)
		}
		wait := req.GetWaitForInstance()
		if wait != nil {
			// (This sets the caller's request: a wait request is made for
			// one call.) The partition ends the subscription at half the
			// future's time, so its answer comes back before the future
			// times out and the wait is renewed.
			wait.TimeoutMillis = max(1, (timeout / 2).Milliseconds())
		}
		resp, err := c.callOnce(ctx, c.PIDs[p], req, timeout)
		if err != nil {
			if wait != nil && ctx.Err() == nil && errors.Is(err, seam.ErrUnavailable) {
				continue // the answer to a subscription was late: subscribe again
			}
			return nil, err
		}
		err = resp.GetError().Err()
		if errors.Is(err, seam.ErrWaitExpired) && ctx.Err() == nil {
			continue // subscribe again
		}
		return resp, err // an error answer may carry partial results
	}
}

func (c *PIDPartitions) callOnce(ctx context.Context, pid *actor.PID, req *seam.Request, timeout time.Duration) (*seam.Response, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("call partition %s: %w", pid.Id, context.DeadlineExceeded)
	}
	f := c.Root.RequestFuture(pid, req, timeout)
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f.Result()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("call partition %s: %w: %w", pid.Id, seam.ErrUnavailable, r.err)
		}
		resp, ok := r.v.(*seam.Response)
		if !ok {
			return nil, fmt.Errorf("call partition %s: unexpected answer %T", pid.Id, r.v)
		}
		return resp, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("call partition %s: %w", pid.Id, ctx.Err())
	}
}
