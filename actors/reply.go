package actors

import (
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/durable-go/durable/persistence"
	"github.com/durable-go/durable/seam"
)

// replier answers one request of the partition seam. Requests from this
// process carry a chanReply (the in-process shortcut: no future, no
// registry entry, and the caller can give up when its context ends);
// requests that came as a *seam.Request to a partition actor's PID, from
// another process or through PIDPartitions, carry a pidReply, so the answer
// travels back as a message.
type replier interface{ answer(*seam.Response) }

// chanReply answers through a buffered channel of capacity 1.
type chanReply chan *seam.Response

func (c chanReply) answer(r *seam.Response) { c <- r }

// pidReply answers by sending the response to the requester's PID.
type pidReply struct {
	root *actor.RootContext
	pid  *actor.PID
}

func (p pidReply) answer(r *seam.Response) { p.root.Send(p.pid, r) }

// replyTo answers r (if any) with err, or with an empty success.
func replyTo(r replier, err error) {
	if r != nil {
		r.answer(seam.Failed(retryableStoreError(err)))
	}
}

// retryableStoreError marks a failed store write (a disk error, a full
// disk) as seam.ErrUnavailable: nothing of the request was written, and it
// may be sent again once the store writes again.
func retryableStoreError(err error) error {
	if err != nil && errors.Is(err, persistence.ErrWriteFailed) && !errors.Is(err, seam.ErrUnavailable) {
		return fmt.Errorf("%w: %w", seam.ErrUnavailable, err)
	}
	return err
}
