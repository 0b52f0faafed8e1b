package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// every route of the API, with a method that reaches it.
var everyRoute = []struct{ method, path string }{
	{"POST", WebhookBase + "/orchestrators/Echo"},
	{"POST", WebhookBase + "/orchestrators/Echo/some-id"},
	{"GET", WebhookBase + "/instances"},
	{"GET", WebhookBase + "/instances/"},
	{"DELETE", WebhookBase + "/instances/?createdTimeFrom=2020-01-01T00:00:00Z"},
	{"GET", WebhookBase + "/instances/some-id"},
	{"DELETE", WebhookBase + "/instances/some-id"},
	{"POST", WebhookBase + "/instances/some-id/raiseEvent/Go"},
	{"POST", WebhookBase + "/instances/some-id/terminate"},
	{"POST", WebhookBase + "/instances/some-id/suspend"},
	{"POST", WebhookBase + "/instances/some-id/resume"},
	{"POST", WebhookBase + "/instances/some-id/rewind"},
	{"POST", WebhookBase + "/instances/some-id/restart"},
	{"GET", WebhookBase + "/entities"},
	{"GET", WebhookBase + "/entities/Counter"},
	{"GET", WebhookBase + "/entities/Counter/k"},
	{"POST", WebhookBase + "/entities/Counter/k?op=add"},
	{"DELETE", WebhookBase + "/entities/Counter/k"},
	{"GET", RPCBase + "/instances/some-id"},
	{"POST", RPCBase + "/orchestrators/Echo"},
	{"GET", "/api/orchestrators/Echo"},
	{"POST", "/api/orchestrators/Echo"},
	{"GET", "/no/such/route"},
}

func TestAPIKeyIsRequiredOnEveryRoute(t *testing.T) {
	e := newEnv(t, Options{APIKey: "s3cret"})
	e.key = "" // send none unless a case says so
	for _, rt := range everyRoute {
		expectCode(t, "no key: "+rt.method+" "+rt.path, e.do(rt.method, rt.path, ""), http.StatusUnauthorized)
		expectCode(t, "wrong key: "+rt.method+" "+rt.path, e.do(rt.method, rt.path, "", "x-functions-key", "s3cret!"), http.StatusUnauthorized)
		sep := "?"
		if strings.Contains(rt.path, "?") {
			sep = "&"
		}
		expectCode(t, "wrong code: "+rt.method+" "+rt.path, e.do(rt.method, rt.path+sep+"code=s3cre", ""), http.StatusUnauthorized)
	}
	page, _ := e.c.List(t.Context(), durableQueryAll)
	if len(page.Instances) != 0 {
		t.Fatalf("unauthorized requests started %d instances", len(page.Instances))
	}
}

func TestAPIKeyIsAcceptedAsHeaderOrCodeAndCarriedInTheReturnedURLs(t *testing.T) {
	e := newEnv(t, Options{APIKey: "s3cret+/="})
	e.key = ""
	r := e.do("POST", WebhookBase+"/orchestrators/Echo?code="+url.QueryEscape("s3cret+/="), `1`)
	expectCode(t, "start with code", r, http.StatusAccepted)
	var p CheckStatusPayload
	r.json(t, &p)
	for _, u := range []string{p.StatusQueryGetURI, p.SendEventPostURI, p.TerminatePostURI, p.PurgeHistoryDeleteURI, p.RestartPostURI, p.SuspendPostURI, p.ResumePostURI} {
		if !strings.Contains(u, "&code="+url.QueryEscape("s3cret+/=")) {
			t.Errorf("URL without the key: %s", u)
		}
	}
	e.complete(p.ID)
	// The returned status URL works as it is.
	resp, err := http.Get(p.StatusQueryGetURI)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("statusQueryGetUri answered %d", resp.StatusCode)
	}
	expectCode(t, "status with header", e.do("GET", WebhookBase+"/instances/"+p.ID, "", "x-functions-key", "s3cret+/="), http.StatusOK)
}

func TestWithoutAPIKeyTheURLsCarryNoCode(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("POST", WebhookBase+"/orchestrators/Echo", "")
	var p CheckStatusPayload
	r.json(t, &p)
	if strings.Contains(p.StatusQueryGetURI, "code=") {
		t.Fatalf("code in %s", p.StatusQueryGetURI)
	}
}
