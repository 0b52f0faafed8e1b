package durable_test

import (
	"context"

	"github.com/durable-go/durable/orchestration"
)

func durableActivityInfo(ctx context.Context) (string, bool) {
	info, ok := orchestration.ActivityInfoFrom(ctx)
	return info.InstanceID, ok
}
