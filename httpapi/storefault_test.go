package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable"
)

// TestAFailingStoreAnswers503WithRetryAfter: while the store cannot write
// (a full or failing disk, injected at the store), writes are answered 503
// with Retry-After, not 500; once it writes again, so does the API.
func TestAFailingStoreAnswers503WithRetryAfter(t *testing.T) {
	var failing atomic.Bool
	rt, err := durable.Open(durable.Options{Dir: t.TempDir(), Logger: quiet, CommitFault: func(int) error {
		if failing.Load() {
			return errors.New("injected: no space left on device")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	registerTestApp(t, rt)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	api := New(rt.Client(), Options{Logger: quiet})
	srv := httptest.NewServer(api)
	t.Cleanup(func() { api.StopWaits(); srv.Close(); _ = rt.Close() })
	e := &env{t: t, rt: rt, c: rt.Client(), api: api, srv: srv}

	failing.Store(true)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", WebhookBase + "/orchestrators/Echo/full-1", `1`},
		{"POST", WebhookBase + "/entities/Counter/full?op=add", `1`},
	} {
		r := e.do(tc.method, tc.path, tc.body)
		expectCode(t, tc.method+" "+tc.path+" on a full disk", r, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("%s %s: 503 without Retry-After", tc.method, tc.path)
		}
	}
	expectCode(t, "status of the refused start", e.do("GET", WebhookBase+"/instances/full-1", ""), http.StatusNotFound)
	failing.Store(false)
	expectCode(t, "start once the disk writes again", e.do("POST", WebhookBase+"/orchestrators/Echo/full-1", `1`), http.StatusAccepted)
}
