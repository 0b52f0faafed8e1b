package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/durable-go/durable"
)

// dashboardEnv is an env whose handler also reports the node and serves
// the dashboard.
func dashboardEnv(t *testing.T, key string) *env {
	t.Helper()
	e := newEnv(t, Options{APIKey: key})
	e.api = New(e.c, Options{APIKey: key, Node: e.rt, Dashboard: true, Logger: quiet})
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(func() { e.api.StopWaits(); e.srv.Close() })
	return e
}

func TestNodeRouteReportsTheNodeBehindTheAPIKey(t *testing.T) {
	e := dashboardEnv(t, "k3y")
	e.complete(e.start("Echo", `1`))
	for _, base := range []string{WebhookBase, RPCBase} {
		e.key = ""
		expectCode(t, "node without the key", e.do("GET", base+"/node", ""), http.StatusUnauthorized)
		e.key = "k3y"
		r := e.do("GET", base+"/node", "")
		expectCode(t, "node", r, http.StatusOK)
		var p NodePayload
		r.json(t, &p)
		if !p.Ready || p.Partitions != 4 || len(p.HostedPartitions) != 4 || p.Actors == 0 || p.ActivitySlots == 0 {
			t.Errorf("node payload %+v: want a ready node hosting its 4 partitions", p)
		}
		if p.MaxInMemory != durable.DefaultMaxActorsInMemory || p.InMemory > p.MaxInMemory || len(p.PartitionsDown) != 0 {
			t.Errorf("node payload %+v: want the default bound of actors in memory and no partition down", p)
		}
		if p.Commits == 0 || p.Transactions == 0 || p.CommitSeconds <= 0 || p.MeanCommitLatencySec <= 0 {
			t.Errorf("node payload %+v: want the commits of the instance run and their latency", p)
		}
	}
}

func TestNodeRouteIs404WithoutANode(t *testing.T) {
	e := newEnv(t, Options{})
	expectCode(t, "node", e.do("GET", WebhookBase+"/node", ""), http.StatusNotFound)
}

func TestDashboardIsServedWithoutTheKeyOnlyWhenEnabled(t *testing.T) {
	e := dashboardEnv(t, "k3y")
	e.key = ""
	for _, c := range []struct {
		path, contentType, contains string
	}{
		{"/ui/", "text/html", `<script src="app.js">`},
		{"/ui/app.js", "text/javascript", "x-functions-key"},
		{"/ui/app.css", "text/css", ".tl-bar"},
	} {
		r := e.do("GET", c.path, "")
		if r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), c.contentType) || !strings.Contains(string(r.body), c.contains) {
			t.Errorf("GET %s: %d %s, want 200 %s with %q", c.path, r.code, r.header.Get("Content-Type"), c.contentType, c.contains)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q, want default-src 'self'", c.path, csp)
		}
	}
	r := e.do("GET", "/ui", "")
	if r.code != http.StatusOK || !strings.Contains(string(r.body), "app.js") {
		t.Errorf("GET /ui: %d, want the redirect to /ui/ followed", r.code)
	}
	expectCode(t, "POST /ui/", e.do("POST", "/ui/", ""), http.StatusMethodNotAllowed)
	expectCode(t, "a missing file", e.do("GET", "/ui/nope.js", ""), http.StatusNotFound)

	// Off by default: /ui/ is just another unknown route behind the key.
	plain := newEnv(t, Options{APIKey: "k3y"})
	plain.key = ""
	expectCode(t, "no dashboard, no key", plain.do("GET", "/ui/", ""), http.StatusUnauthorized)
	plain.key = "k3y"
	expectCode(t, "no dashboard", plain.do("GET", "/ui/", ""), http.StatusNotFound)
}

func TestStartKeepsTheTraceparentHeaderInTheHistory(t *testing.T) {
	e := newEnv(t, Options{})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct{ header, want string }{{tp, tp}, {"garbage", ""}} {
		r := e.do("POST", WebhookBase+"/orchestrators/Echo", `1`, "traceparent", c.header)
		expectCode(t, "start", r, http.StatusAccepted)
		var p CheckStatusPayload
		r.json(t, &p)
		e.complete(p.ID)
		r = e.do("GET", WebhookBase+"/instances/"+p.ID+"?showHistory=true", "")
		var st StatusPayload
		r.json(t, &st)
		if st.HistoryEvents == nil || len(*st.HistoryEvents) == 0 || (*st.HistoryEvents)[0].EventType != "ExecutionStarted" {
			t.Fatalf("history %s", r.body)
		}
		if got := (*st.HistoryEvents)[0].TraceParent; got != c.want {
			t.Errorf("traceparent header %q: history keeps %q, want %q", c.header, got, c.want)
		}
	}
}
