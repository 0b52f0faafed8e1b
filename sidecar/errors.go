package sidecar

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/durable-go/durable"
)

// codeOf maps an error of the durable Client to the gRPC code the Durable
// Task SDKs expect for it. ok is false for an unexpected error.
func codeOf(err error) (code codes.Code, ok bool) {
	switch {
	case errors.Is(err, durable.ErrInstanceNotFound), errors.Is(err, durable.ErrEntityNotFound):
		return codes.NotFound, true
	case errors.Is(err, durable.ErrInstanceExists):
		return codes.AlreadyExists, true
	case errors.Is(err, durable.ErrInstanceCompleted), errors.Is(err, durable.ErrNotFailed), errors.Is(err, durable.ErrInstanceNotCompleted):
		return codes.FailedPrecondition, true
	case errors.Is(err, durable.ErrInvalidInstanceID), errors.Is(err, durable.ErrInvalidInput),
		errors.Is(err, durable.ErrPayloadTooLarge), errors.Is(err, durable.ErrOrchestratorNotRegistered),
		errors.Is(err, durable.ErrInvalidEntityID), errors.Is(err, durable.ErrEntityNotRegistered):
		return codes.InvalidArgument, true
	case errors.Is(err, durable.ErrClosed), errors.Is(err, durable.ErrNotStarted), errors.Is(err, durable.ErrUnavailable):
		return codes.Unavailable, true
	case errors.Is(err, durable.ErrPartitionDown):
		// Damaged store files: not the caller's fault, and not healed by
		// retrying soon (HTTP answers 503 without Retry-After); the message
		// names the partition's directory.
		return codes.Unavailable, true
	case errors.Is(err, context.Canceled):
		return codes.Canceled, true
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, true
	}
	return codes.Internal, false
}

// grpcError is err as a gRPC status: the caller's mistakes with their
// message, an unexpected error logged and answered Internal without its
// details.
func (s *Server) grpcError(method string, err error) error {
	if err == nil {
		return nil
	}
	if _, isStatus := status.FromError(err); isStatus {
		return err
	}
	code, ok := codeOf(err)
	if !ok {
		s.log.Error("sidecar: request failed", slog.String("method", method), slog.Any("err", err))
		return status.Errorf(codes.Internal, "%s failed on the server (see its log)", method)
	}
	return status.Error(code, err.Error())
}

// invalid is an InvalidArgument answer for a request the server itself finds
// wrong.
func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// unsupported is the Unimplemented answer for a feature durable does not
// have; why says what instead.
func unsupported(what, why string) error {
	return status.Errorf(codes.Unimplemented, "durable does not support %s: %s", what, why)
}
