package sidecar

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/durable-go/durable"
)

// TestClientErrorsMapToTheirGRPCCodes: every error value of the Client has
// its code, wrapped as the Client wraps it; only an unexpected error is
// Internal.
func TestClientErrorsMapToTheirGRPCCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
		ok   bool
	}{
		{durable.ErrInstanceNotFound, codes.NotFound, true},
		{durable.ErrEntityNotFound, codes.NotFound, true},
		{durable.ErrInstanceExists, codes.AlreadyExists, true},
		{durable.ErrInstanceCompleted, codes.FailedPrecondition, true},
		{durable.ErrNotFailed, codes.FailedPrecondition, true},
		{durable.ErrInstanceNotCompleted, codes.FailedPrecondition, true},
		{durable.ErrInvalidInstanceID, codes.InvalidArgument, true},
		{durable.ErrInvalidInput, codes.InvalidArgument, true},
		{durable.ErrPayloadTooLarge, codes.InvalidArgument, true},
		{durable.ErrOrchestratorNotRegistered, codes.InvalidArgument, true},
		{durable.ErrInvalidEntityID, codes.InvalidArgument, true},
		{durable.ErrEntityNotRegistered, codes.InvalidArgument, true},
		{durable.ErrClosed, codes.Unavailable, true},
		{durable.ErrNotStarted, codes.Unavailable, true},
		{durable.ErrUnavailable, codes.Unavailable, true},
		{durable.ErrPartitionDown, codes.Unavailable, true},
		{context.Canceled, codes.Canceled, true},
		{context.DeadlineExceeded, codes.DeadlineExceeded, true},
		{errors.New("something else"), codes.Internal, false},
	} {
		err := fmt.Errorf("start x: %w", tc.err)
		if code, ok := codeOf(err); code != tc.want || ok != tc.ok {
			t.Errorf("%v: code %v (ok %v), want %v (ok %v)", tc.err, code, ok, tc.want, tc.ok)
		}
	}
}
