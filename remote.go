package durable

import (
	"context"
	"fmt"
)

// RemoteActivityFunc runs activity name in another process (a worker of
// package sidecar) with input (JSON) and returns its output (JSON). ctx
// carries the task (orchestration.ActivityInfoFrom) and ends when the
// instance is terminated or the node shuts down. A failure the worker
// reported is returned as a *FailureDetails, which becomes the task's
// failure as it is (type, message, stack, inner failure).
type RemoteActivityFunc func(ctx context.Context, name string, input []byte) ([]byte, error)

// SetRemoteActivities makes fn serve every activity that no Go function is
// registered for; a name registered with RegisterActivity stays served by
// Go. Call it before Start, so that activities recovered on start reach fn.
func (r *Runtime) SetRemoteActivities(fn RemoteActivityFunc) error {
	if fn == nil {
		return fmt.Errorf("set remote activities: %w", ErrInvalidInput)
	}
	r.mu.Lock()
	started := r.node != nil
	r.mu.Unlock()
	if started {
		return fmt.Errorf("set remote activities: call it before Start")
	}
	return r.reg.setRemoteActivities(fn)
}
