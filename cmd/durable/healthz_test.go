package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/httpapi"
	"github.com/durable-go/durable/orchestration"
	"github.com/durable-go/durable/persistence"
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
// error; `durable list` warns that partition 1 is missing and `durable
// status` of one of its ids fails naming its directory.
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
	if err := rt.RegisterOrchestrator("Echo", func(ctx *orchestration.Context) (any, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	// The command line: list warns that partition 1 is missing, status of
	// one of its ids fails saying where.
	ids := map[int]string{}
	for i := 0; len(ids) < 4; i++ {
		id := fmt.Sprint("i", i)
		if p := persistence.PartitionOf(id, 4); ids[p] == "" {
			ids[p] = id
		}
	}
	for p, id := range ids {
		if p != 1 {
			if _, err := rt.Client().Start(t.Context(), "Echo", 1, durable.WithInstanceID(id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	api := httpapi.New(rt.Client(), httpapi.Options{Logger: quiet})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	r := durableCmd(t, srv.URL, nil, "list")
	r.expect(t, 0, ids[0], ids[2], ids[3])
	if !strings.Contains(r.stderr, "partitions 1 are down") {
		t.Fatalf("list stderr %q: want a warning naming partition 1", r.stderr)
	}
	r = durableCmd(t, srv.URL, nil, "status", ids[1])
	if r.code != 1 || !strings.Contains(r.stderr, partDir) {
		t.Fatalf("status on the down partition: exit %d, stderr %q", r.code, r.stderr)
	}

	code, body := healthzOf(rt)
	if code != http.StatusOK || !strings.HasPrefix(body, "degraded\n") || !strings.Contains(body, "partition 1 down at "+partDir+": ") ||
		!strings.Contains(body, "manifest") {
		t.Fatalf("one partition down: %d %q", code, body)
	}
}
