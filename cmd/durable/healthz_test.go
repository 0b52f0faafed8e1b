package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durable-go/durable"
)

// healthzOf answers GET /healthz of rt.
func healthzOf(rt *durable.Runtime) (int, string) {
	w := httptest.NewRecorder()
	healthz(rt)(w, httptest.NewRequest("GET", "/healthz", nil))
	return w.Code, w.Body.String()
}

// TestHealthzSaysWhichPartitionIsDown: 503 before the node starts, 200 "ok"
// when healthy, and with partition 1's MANIFEST replaced by garbage a 200
// whose body says "degraded" and names partition 1, its directory and the
// error.
func TestHealthzSaysWhichPartitionIsDown(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := durable.Open(durable.Options{Dir: dir, Partitions: 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := healthzOf(rt); code != http.StatusServiceUnavailable {
		t.Fatalf("before start: %d %q, want 503", code, body)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	if code, body := healthzOf(rt); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	partDir := filepath.Join(dir, "partition-001")
	if err := os.WriteFile(filepath.Join(partDir, "MANIFEST"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err = durable.Open(durable.Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	code, body := healthzOf(rt)
	if code != http.StatusOK || !strings.HasPrefix(body, "degraded\n") || !strings.Contains(body, "partition 1 down at "+partDir+": ") ||
		!strings.Contains(body, "manifest") {
		t.Fatalf("one partition down: %d %q", code, body)
	}
}
