package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/durable-go/durable"
)

// Every error of the client gets its status; the unavailable ones say when
// to try again, and none is a 500.
func TestErrorsMapToTheirStatus(t *testing.T) {
	tests := []struct {
		err        error
		status     int
		retryAfter bool
	}{
		{fmt.Errorf("x: %w", durable.ErrInstanceNotFound), http.StatusNotFound, false},
		{fmt.Errorf("x: %w", durable.ErrInstanceExists), http.StatusConflict, false},
		{fmt.Errorf("x: %w", durable.ErrInstanceCompleted), http.StatusGone, false},
		{fmt.Errorf("x: %w", durable.ErrInvalidInput), http.StatusBadRequest, false},
		{fmt.Errorf("partition 3 is moving: %w", durable.ErrUnavailable), http.StatusServiceUnavailable, true},
		{fmt.Errorf("x: %w", durable.ErrClosed), http.StatusServiceUnavailable, true},
		{context.Canceled, http.StatusServiceUnavailable, true},
		{fmt.Errorf("x: %w", durable.ErrPartitionDown), http.StatusServiceUnavailable, false},
	}
	h := &Handler{log: slog.New(slog.DiscardHandler)}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			w := httptest.NewRecorder()
			h.WriteError(w, httptest.NewRequest("GET", "/x", nil), tt.err)
			if w.Code != tt.status || (w.Header().Get("Retry-After") != "") != tt.retryAfter {
				t.Fatalf("status %d Retry-After %q, want %d (retry %v)", w.Code, w.Header().Get("Retry-After"), tt.status, tt.retryAfter)
			}
		})
	}
	if status, _, ok := classify(errors.New("disk on fire")); status != http.StatusInternalServerError || ok {
		t.Fatal("an unexpected error is not a 500")
	}
}
