package orchestration

import "context"

// ActivityInfo tells an activity which task it is running for.
type ActivityInfo struct {
	InstanceID string
	Name       string
	TaskID     int64
	// Attempt is the attempt number, from 1: under a retry policy the
	// policy's attempt (recorded in history, so it carries across
	// restarts); otherwise the executions of this task in this process (an
	// activity may also have run before a crash).
	Attempt int
}

type activityInfoKey struct{}

// WithActivityInfo returns a context carrying info; the runtime calls it
// before it runs an activity.
func WithActivityInfo(ctx context.Context, info ActivityInfo) context.Context {
	return context.WithValue(ctx, activityInfoKey{}, info)
}

// ActivityInfoFrom returns the ActivityInfo of the activity running with ctx.
func ActivityInfoFrom(ctx context.Context) (ActivityInfo, bool) {
	info, ok := ctx.Value(activityInfoKey{}).(ActivityInfo)
	return info, ok
}
