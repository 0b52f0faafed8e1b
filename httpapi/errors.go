package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/durable-go/durable"
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	// Message says what was wrong, for people.
	Message string `json:"Message"`
	// ErrorCode names the kind of error, for programs: InstanceNotFound,
	// InstanceCompleted, BadRequest, PayloadTooLarge, Conflict, ...
	ErrorCode string `json:"ErrorCode"`
}

// classify maps an error of the durable client (or of reading a request) to
// an HTTP status and an error code. ok is false for unexpected errors.
func classify(err error) (status int, code string, ok bool) {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes), errors.Is(err, durable.ErrPayloadTooLarge):
		return http.StatusRequestEntityTooLarge, "PayloadTooLarge", true
	case errors.Is(err, durable.ErrInstanceNotFound):
		return http.StatusNotFound, "InstanceNotFound", true
	case errors.Is(err, durable.ErrEntityNotFound):
		return http.StatusNotFound, "EntityNotFound", true
	case errors.Is(err, durable.ErrEntityNotRegistered):
		return http.StatusBadRequest, "EntityNotRegistered", true
	case errors.Is(err, durable.ErrInvalidEntityID):
		return http.StatusBadRequest, "InvalidEntityId", true
	case errors.Is(err, durable.ErrInstanceCompleted):
		return http.StatusGone, "InstanceCompleted", true
	case errors.Is(err, durable.ErrNotFailed):
		return http.StatusGone, "InstanceNotFailed", true
	case errors.Is(err, errRunning):
		return http.StatusPreconditionFailed, "InstanceNotFailed", true
	case errors.Is(err, durable.ErrInstanceNotCompleted):
		return http.StatusPreconditionFailed, "InstanceNotCompleted", true
	case errors.Is(err, durable.ErrInstanceExists):
		return http.StatusConflict, "InstanceExists", true
	case errors.Is(err, durable.ErrOrchestratorNotRegistered):
		return http.StatusBadRequest, "OrchestratorNotRegistered", true
	case errors.Is(err, durable.ErrInvalidInstanceID):
		return http.StatusBadRequest, "InvalidInstanceId", true
	case errors.Is(err, durable.ErrInvalidInput), errors.As(err, new(*badRequest)):
		return http.StatusBadRequest, "BadRequest", true
	case errors.Is(err, durable.ErrPartitionDown):
		// A server fault, not the request's, and one that does not heal
		// by itself: 503 without Retry-After.
		return http.StatusServiceUnavailable, codePartitionDown, true
	case errors.Is(err, durable.ErrClosed), errors.Is(err, durable.ErrNotStarted), errors.Is(err, durable.ErrUnavailable):
		return http.StatusServiceUnavailable, "Unavailable", true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller went away or the server is shutting down.
		return http.StatusServiceUnavailable, "Unavailable", true
	}
	return http.StatusInternalServerError, "InternalError", false
}

// codePartitionDown is the ErrorCode of a request for an instance or entity
// whose partition is down (durable.ErrPartitionDown).
const codePartitionDown = "PartitionDown"

// badRequest is a request the handler itself finds wrong (a malformed query
// parameter or body).
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func errBadRequest(msg string) error { return &badRequest{msg: msg} }

// WriteError answers err with the status Durable Functions would give it
// (404 unknown instance, 410 finished instance, 400 bad input, 413 too
// large, 409 conflict, 503 with Retry-After for a partition that cannot
// serve now, 503 without it and ErrorCode PartitionDown for one whose store
// is damaged, ...) and, as Durable Functions does, an empty body
// for 404 and 410 and a JSON ErrorBody for the others. An unexpected error
// is logged and answered 500 without its details.
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, ok := classify(err)
	if !ok {
		h.log.Error("httpapi: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		h.fail(w, r, status, code, "something went wrong while processing your request")
		return
	}
	if status == http.StatusServiceUnavailable && code != codePartitionDown {
		w.Header().Set("Retry-After", "1") // a partition moves in seconds
	}
	if status == http.StatusNotFound || status == http.StatusGone {
		// An unknown or finished instance or entity: Durable Functions
		// answers these with an empty body, and its clients build their
		// own message from the status (the npm client's rewind turns a
		// body into its error message, so a JSON object would read
		// "[object Object]"). The status says it all; the reason is logged.
		h.log.Debug("httpapi: request rejected", "method", r.Method, "path", r.URL.Path, "status", status, "message", err.Error())
		w.WriteHeader(status)
		return
	}
	h.fail(w, r, status, code, err.Error())
}

// fail writes an error answer.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if status < 500 {
		h.log.Debug("httpapi: request rejected", "method", r.Method, "path", r.URL.Path, "status", status, "message", msg)
	}
	writeJSON(w, status, ErrorBody{Message: msg, ErrorCode: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	// Not HTML-escaped: the URLs keep their '&' rather than \u0026.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err != nil {
		// Only our own payload types are marshaled, and they always can be.
		status = http.StatusInternalServerError
		b = []byte(`{"Message":"cannot encode the response","ErrorCode":"InternalError"}`)
	}
	writeRawJSON(w, status, b)
}

// writeRawJSON writes b, which must be JSON (nil is written as null).
func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	if len(b) == 0 {
		b = []byte("null")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
