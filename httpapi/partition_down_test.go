package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/persistence"
)

// TestAPartitionDownIsA503WithoutRetryAfterAndTheNodeSaysWhich damages
// partition 1's MANIFEST and serves the API over the restarted runtime:
// requests for an id of partition 1 are 503 PartitionDown naming its
// directory, without Retry-After (it does not heal by itself), never a
// 500; a listing serves the other partitions and names the missing one in
// its header; the node route lists the partition as down.
func TestAPartitionDownIsA503WithoutRetryAfterAndTheNodeSaysWhich(t *testing.T) {
	const n = 4
	dir := t.TempDir()
	idOn := func(prefix string, p int) string {
		for i := 0; ; i++ {
			if id := fmt.Sprintf("%s%d", prefix, i); persistence.PartitionOf(id, n) == p {
				return id
			}
		}
	}
	rt, err := durable.Open(durable.Options{Dir: dir, Partitions: n, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	registerTestApp(t, rt)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	for p := 0; p < n; p++ {
		if _, err := rt.Client().Start(t.Context(), "Echo", 1, durable.WithInstanceID(idOn("i", p))); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	partDir := filepath.Join(dir, "partition-001")
	if err := os.WriteFile(filepath.Join(partDir, "MANIFEST"), []byte("\x00garbage, not a manifest"), 0o644); err != nil {
		t.Fatal(err)
	}

	rt, err = durable.Open(durable.Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	registerTestApp(t, rt)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	api := New(rt.Client(), Options{Node: rt, Logger: quiet})
	srv := httptest.NewServer(api)
	t.Cleanup(func() { api.StopWaits(); srv.Close(); _ = rt.Close() })
	e := &env{t: t, rt: rt, c: rt.Client(), api: api, srv: srv}

	down := idOn("i", 1)
	downKey := ""
	for i := 0; downKey == ""; i++ {
		if persistence.PartitionOf(fmt.Sprintf("@counter@k%d", i), n) == 1 {
			downKey = fmt.Sprintf("k%d", i)
		}
	}
	for _, req := range []struct{ method, path, body string }{
		{"GET", WebhookBase + "/instances/" + down, ""},
		{"POST", WebhookBase + "/instances/" + down + "/raiseEvent/Go", `1`},
		{"POST", WebhookBase + "/instances/" + down + "/terminate", ""},
		{"DELETE", WebhookBase + "/instances/" + down, ""},
		{"POST", WebhookBase + "/orchestrators/Echo/" + idOn("new", 1), `1`},
		{"POST", WebhookBase + "/entities/Counter/" + downKey + "?op=add", `1`},
		{"GET", WebhookBase + "/entities/Counter/" + downKey, ""},
	} {
		what := req.method + " " + req.path
		r := e.do(req.method, req.path, req.body)
		expectCode(t, what, r, http.StatusServiceUnavailable)
		var eb ErrorBody
		r.json(t, &eb)
		if eb.ErrorCode != "PartitionDown" || !strings.Contains(eb.Message, partDir) || r.header.Get("Retry-After") != "" {
			t.Fatalf("%s: %s (Retry-After %q), want PartitionDown naming %s without Retry-After", what, r, r.header.Get("Retry-After"), partDir)
		}
	}

	r := e.do("GET", WebhookBase+"/instances", "")
	expectCode(t, "list", r, http.StatusOK)
	var list []StatusPayload
	r.json(t, &list)
	if len(list) != n-1 || r.header.Get(PartitionsDownHeader) != "1" {
		t.Fatalf("list: %d instances, %s %q; want %d and \"1\"", len(list), PartitionsDownHeader, r.header.Get(PartitionsDownHeader), n-1)
	}
	expectCode(t, "healthy instance", e.do("GET", WebhookBase+"/instances/"+idOn("i", 0), ""), http.StatusOK)

	r = e.do("GET", WebhookBase+"/node", "")
	expectCode(t, "node", r, http.StatusOK)
	var p NodePayload
	r.json(t, &p)
	if len(p.PartitionsDown) != 1 || p.PartitionsDown[0].Partition != 1 || p.PartitionsDown[0].Dir != partDir ||
		!strings.Contains(p.PartitionsDown[0].Error, "manifest") || len(p.HostedPartitions) != n-1 {
		t.Fatalf("node payload %+v", p)
	}
}
