package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// registerTestApp registers the functions the tests drive:
//
//	Echo      returns its input
//	Hello     calls the activity Greet with its input
//	Wait      returns the payload of the event "Go"
//	Fail      fails with "boom"
//	FlakyOnce calls the activity Flaky, which fails its first call only
//	Counter   an entity whose state is a number: add, reset, get, delete
func registerTestApp(t testing.TB, rt *durable.Runtime) {
	var flaky atomic.Int32
	// buggy is the orchestrator code's bug: the first run of BuggyOnce
	// fails after its activity, and every later run is the fixed code (a
	// deployment, without restarting the node).
	var buggy atomic.Bool
	buggy.Store(true)
	for _, err := range []error{
		rt.RegisterOrchestrator("Echo", func(ctx *orchestration.Context) (any, error) {
			var in any
			err := ctx.Input(&in)
			return in, err
		}),
		rt.RegisterOrchestrator("Hello", func(ctx *orchestration.Context) (any, error) {
			var name string
			if err := ctx.Input(&name); err != nil {
				return nil, err
			}
			return orchestration.Await[string](ctx.CallActivity("Greet", name))
		}),
		rt.RegisterActivity("Greet", func(_ context.Context, name string) (string, error) { return "Hello " + name + "!", nil }),
		rt.RegisterOrchestrator("Wait", func(ctx *orchestration.Context) (any, error) {
			_ = ctx.SetCustomStatus("waiting")
			var v any
			err := ctx.WaitForExternalEvent("Go").Await(&v)
			return v, err
		}),
		rt.RegisterOrchestrator("Fail", func(ctx *orchestration.Context) (any, error) { return nil, errors.New("boom") }),
		rt.RegisterOrchestrator("FlakyOnce", func(ctx *orchestration.Context) (any, error) {
			return orchestration.Await[string](ctx.CallActivity("Flaky", nil))
		}),
		rt.RegisterActivity("Flaky", func(context.Context) (string, error) {
			if flaky.Add(1) == 1 {
				return "", errors.New("first call fails")
			}
			return "second call works", nil
		}),
		rt.RegisterOrchestrator("BuggyOnce", func(ctx *orchestration.Context) (any, error) {
			s, err := orchestration.Await[string](ctx.CallActivity("Greet", "fix"))
			if err != nil {
				return nil, err
			}
			if buggy.Swap(false) {
				return nil, errors.New("a bug in the orchestrator code")
			}
			return s, nil
		}),
		// Optional takes an optional list, as the sample app's HelloCities.
		rt.RegisterOrchestrator("Optional", func(ctx *orchestration.Context) (any, error) {
			list := []string{"default"}
			_, err := ctx.OptionalInput(&list)
			return list, err
		}),
		rt.RegisterEntity("Counter", counter),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func counter(ctx *orchestration.EntityContext) error {
	var v int
	if err := ctx.GetState(&v); err != nil {
		return err
	}
	switch strings.ToLower(ctx.Operation()) {
	case "add":
		var n int
		if err := ctx.Input(&n); err != nil {
			return err
		}
		return ctx.SetState(v + n)
	case "reset":
		return ctx.SetState(0)
	case "get":
		return ctx.Return(v)
	case "delete":
		ctx.DeleteState()
		return nil
	}
	return fmt.Errorf("unknown operation %q", ctx.Operation())
}

// env is a running in-memory runtime with the test app behind the API.
type env struct {
	t   testing.TB
	rt  *durable.Runtime
	c   *durable.Client
	api *Handler
	srv *httptest.Server
	key string
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	rt, err := durable.Open(durable.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	registerTestApp(t, rt)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	api := New(rt.Client(), opts)
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.StopWaits()
		srv.Close()
		_ = rt.Close()
	})
	return &env{t: t, rt: rt, c: rt.Client(), api: api, srv: srv, key: opts.APIKey}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", r.code, err, r.body)
	}
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.code, r.body) }

// do sends a request to the API (with the API key as a header if the env
// has one) and reads the whole answer.
func (e *env) do(method, path string, body string, header ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.key != "" {
		req.Header.Set("x-functions-key", e.key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) start(name, input string, id ...string) string {
	e.t.Helper()
	path := WebhookBase + "/orchestrators/" + name
	if len(id) > 0 {
		path += "/" + id[0]
	}
	r := e.do("POST", path, input)
	if r.code != http.StatusAccepted {
		e.t.Fatalf("start %s: %s", name, r)
	}
	var p CheckStatusPayload
	r.json(e.t, &p)
	return p.ID
}

func (e *env) complete(id string) *durable.Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := e.c.WaitForCompletion(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// waitStatus polls until the instance reaches want.
func (e *env) waitStatus(id string, want durable.RuntimeStatus) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := e.c.Status(context.Background(), id)
		if err == nil && st.RuntimeStatus == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("instance %s never reached %s (last %v %v)", id, want, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func expectCode(t testing.TB, what string, r response, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: got %s, want %d", what, r, code)
	}
	if (code == http.StatusNotFound || code == http.StatusGone) && len(r.body) == 0 {
		return // an unknown or finished instance or entity, as Durable Functions answers it
	}
	if code >= 400 {
		var eb ErrorBody
		if err := json.Unmarshal(r.body, &eb); err != nil || eb.Message == "" || eb.ErrorCode == "" {
			t.Fatalf("%s: error answer without a JSON error body: %s", what, r.body)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s: error answer with Content-Type %q", what, ct)
		}
	}
}

var dfTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestStartAnswers202WithCheckStatusPayloadLocationAndRetryAfter(t *testing.T) {
	e := newEnv(t, Options{TaskHub: "MyHub", Connection: "MyConn"})
	r := e.do("POST", WebhookBase+"/orchestrators/Echo", `{"a": 1}`)
	expectCode(t, "start", r, http.StatusAccepted)
	var p CheckStatusPayload
	r.json(t, &p)
	var raw map[string]string
	r.json(t, &raw)
	for _, k := range []string{"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"} {
		if raw[k] == "" {
			t.Errorf("check-status payload lacks %s: %s", k, r.body)
		}
	}
	if bytes.Contains(r.body, []byte(`\u0026`)) {
		t.Errorf("URLs HTML-escaped: %s", r.body)
	}
	if len(raw) != 8 {
		t.Errorf("check-status payload has %d fields, want 8: %s", len(raw), r.body)
	}
	inst := e.srv.URL + WebhookBase + "/instances/" + p.ID
	q := "taskHub=MyHub&connection=MyConn"
	for got, want := range map[string]string{
		p.StatusQueryGetURI:     inst + "?" + q,
		p.SendEventPostURI:      inst + "/raiseEvent/{eventName}?" + q,
		p.TerminatePostURI:      inst + "/terminate?reason={text}&" + q,
		p.PurgeHistoryDeleteURI: inst + "?" + q,
		p.RestartPostURI:        inst + "/restart?" + q,
		p.SuspendPostURI:        inst + "/suspend?reason={text}&" + q,
		p.ResumePostURI:         inst + "/resume?reason={text}&" + q,
	} {
		if got != want {
			t.Errorf("got URL %s, want %s", got, want)
		}
	}
	if loc := r.header.Get("Location"); loc != p.StatusQueryGetURI {
		t.Errorf("Location %q, want statusQueryGetUri %q", loc, p.StatusQueryGetURI)
	}
	if ra := r.header.Get("Retry-After"); ra != "10" {
		t.Errorf("Retry-After %q, want 10", ra)
	}
	if st := e.complete(p.ID); string(st.Output) != `{"a":1}` {
		t.Errorf("output %s", st.Output)
	}
}

func TestStartUnderAChosenIDAndConflictWhileItRuns(t *testing.T) {
	e := newEnv(t, Options{})
	if id := e.start("Wait", "", "order-42"); id != "order-42" {
		t.Fatalf("started %q", id)
	}
	r := e.do("POST", WebhookBase+"/orchestrators/Wait/order-42", "")
	expectCode(t, "start of a running id", r, http.StatusConflict)
	// The same routes under the RPC base path.
	r = e.do("POST", RPCBase+"/orchestrators/Echo/rpc-1", `"x"`)
	expectCode(t, "start under /durabletask", r, http.StatusAccepted)
	if st := e.complete("rpc-1"); string(st.Output) != `"x"` {
		t.Fatalf("output %s", st.Output)
	}
}

func TestStartWithoutBodyHasNullInputAndAnEmptyJSONStringIsAnInput(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("Echo", "")
	st := e.complete(id)
	if st.Input != nil || st.Output != nil {
		t.Fatalf("input %q output %q, want none", st.Input, st.Output)
	}
	// The npm client sends "" (a JSON string) for startNew without input.
	id = e.start("Echo", `""`)
	if st := e.complete(id); string(st.Output) != `""` {
		t.Fatalf("output %q", st.Output)
	}
}

func TestStartRejectsBadInput(t *testing.T) {
	e := newEnv(t, Options{MaxBodyBytes: 1024})
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
	}{
		{"malformed JSON", "POST", "/orchestrators/Echo", `{"a":`, 400},
		{"JSON with trailing garbage", "POST", "/orchestrators/Echo", `{} x`, 400},
		{"unknown orchestrator", "POST", "/orchestrators/Nope", ``, 400},
		{"id starting with @", "POST", "/orchestrators/Echo/@x", ``, 400},
		{"id with an escaped slash", "POST", "/orchestrators/Echo/a%2Fb", ``, 400},
		{"id with a control character", "POST", "/orchestrators/Echo/a%01b", ``, 400},
		{"id over 256 characters", "POST", "/orchestrators/Echo/" + strings.Repeat("x", 257), ``, 400},
		{"body over the limit", "POST", "/orchestrators/Echo", `"` + strings.Repeat("x", 2000) + `"`, 413},
		{"bad timeout", "POST", "/orchestrators/Echo?timeout=soon", ``, 400},
		{"negative timeout", "POST", "/orchestrators/Echo?timeout=-1", ``, 400},
		{"bad pollingInterval", "POST", "/orchestrators/Echo?timeout=1&pollingInterval=NaN", ``, 400},
		{"GET on the start route", "GET", "/orchestrators/Echo", ``, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectCode(t, tc.name, e.do(tc.method, WebhookBase+tc.path, tc.body), tc.code)
		})
	}
	page, err := e.c.List(context.Background(), durable.Query{})
	if err != nil || len(page.Instances) != 0 {
		t.Fatalf("bad requests created instances: %v %v", page, err)
	}
}

func TestRuntimePayloadLimitIsA413(t *testing.T) {
	rt, err := durable.Open(durable.Options{Logger: quiet, MaxPayloadBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	registerTestApp(t, rt)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	srv := httptest.NewServer(New(rt.Client(), Options{Logger: quiet}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+WebhookBase+"/orchestrators/Echo", "application/json", strings.NewReader(`"`+strings.Repeat("x", 200)+`"`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d, want 413", resp.StatusCode)
	}
}

func TestStartWithTimeoutAnswersTheOutputOnceCompleted(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("POST", WebhookBase+"/orchestrators/Hello?timeout=20&pollingInterval=1", `"Tokyo"`)
	expectCode(t, "start and wait", r, http.StatusOK)
	if string(r.body) != `"Hello Tokyo!"` {
		t.Fatalf("body %s, want the raw output", r.body)
	}
}

func TestStartWithTimeoutAnswersTheStatusOfAFailedInstance(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("POST", WebhookBase+"/orchestrators/Fail?timeout=20&pollingInterval=1", "")
	expectCode(t, "start and wait for a failure", r, http.StatusOK)
	var p StatusPayload
	r.json(t, &p)
	if p.RuntimeStatus != "Failed" || !strings.Contains(string(p.Output), "boom") || p.FailureDetails == nil {
		t.Fatalf("status %s", r.body)
	}
	r = e.do("POST", WebhookBase+"/orchestrators/Fail?timeout=20&returnInternalServerErrorOnFailure=true", "")
	if r.code != http.StatusInternalServerError {
		t.Fatalf("with returnInternalServerErrorOnFailure: %s", r)
	}
}

func TestStartWithTimeoutAnswers202WhileStillRunning(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("POST", WebhookBase+"/orchestrators/Wait?timeout=0.05&pollingInterval=0.01", "")
	expectCode(t, "start and wait on a waiting instance", r, http.StatusAccepted)
	var p CheckStatusPayload
	r.json(t, &p)
	if p.ID == "" || r.header.Get("Location") != p.StatusQueryGetURI {
		t.Fatalf("answer %s %v", r.body, r.header)
	}
}

func TestStopWaitsEndsLongPollsWithA202(t *testing.T) {
	e := newEnv(t, Options{})
	done := make(chan response, 1)
	go func() { done <- e.do("POST", WebhookBase+"/orchestrators/Wait?timeout=60", "") }()
	time.Sleep(100 * time.Millisecond)
	e.api.StopWaits()
	select {
	case r := <-done:
		expectCode(t, "long poll at shutdown", r, http.StatusAccepted)
	case <-time.After(10 * time.Second):
		t.Fatal("StopWaits did not end the wait")
	}
}

func TestStatusOfARunningInstanceIs202WithLocationAndRetryAfter(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("Wait", `{"order": 7}`)
	e.waitStatus(id, durable.StatusRunning)
	path := WebhookBase + "/instances/" + id + "?taskHub=x&connection=y"
	var r response
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = e.do("GET", path, "")
		if strings.Contains(string(r.body), `"waiting"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	expectCode(t, "status", r, http.StatusAccepted)
	if loc := r.header.Get("Location"); loc != e.srv.URL+path {
		t.Errorf("Location %q, want the request URL", loc)
	}
	if r.header.Get("Retry-After") != "5" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	var raw map[string]json.RawMessage
	r.json(t, &raw)
	for _, k := range []string{"name", "instanceId", "runtimeStatus", "input", "customStatus", "output", "createdTime", "lastUpdatedTime"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status lacks %q: %s", k, r.body)
		}
	}
	if _, ok := raw["historyEvents"]; ok {
		t.Errorf("historyEvents without showHistory: %s", r.body)
	}
	var p StatusPayload
	r.json(t, &p)
	if p.Name != "Wait" || p.InstanceID != id || p.RuntimeStatus != "Running" || string(p.Input) != `{"order":7}` ||
		string(p.Output) != "null" && p.Output != nil || string(p.CustomStatus) != `"waiting"` {
		t.Errorf("status %s", r.body)
	}
	if string(raw["output"]) != "null" {
		t.Errorf("output %s, want null", raw["output"])
	}
	if !dfTime.MatchString(p.CreatedTime) || !dfTime.MatchString(p.LastUpdatedTime) {
		t.Errorf("times %q %q, want yyyy-MM-ddTHH:mm:ssZ", p.CreatedTime, p.LastUpdatedTime)
	}
	r = e.do("GET", WebhookBase+"/instances/"+id+"?showInput=false", "")
	r.json(t, &raw)
	if string(raw["input"]) != "null" {
		t.Errorf("showInput=false gave input %s", raw["input"])
	}
}

func TestStatusOfACompletedInstanceIs200WithHistoryOnRequest(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("Hello", `"Seattle"`)
	e.complete(id)
	r := e.do("GET", WebhookBase+"/instances/"+id, "")
	expectCode(t, "status", r, http.StatusOK)
	if r.header.Get("Location") != "" {
		t.Errorf("Location on a finished instance")
	}
	var p StatusPayload
	r.json(t, &p)
	if p.RuntimeStatus != "Completed" || string(p.Output) != `"Hello Seattle!"` {
		t.Fatalf("status %s", r.body)
	}

	r = e.do("GET", WebhookBase+"/instances/"+id+"?showHistory=true", "")
	r.json(t, &p)
	if p.HistoryEvents == nil {
		t.Fatalf("no historyEvents: %s", r.body)
	}
	var types []string
	for _, ev := range *p.HistoryEvents {
		types = append(types, ev.EventType)
		if ev.Result != nil {
			t.Errorf("Result without showHistoryOutput: %+v", ev)
		}
	}
	if got := strings.Join(types, ","); got != "ExecutionStarted,TaskCompleted,ExecutionCompleted" {
		t.Fatalf("history %s", got)
	}
	h := *p.HistoryEvents
	if h[0].FunctionName != "Hello" || h[1].FunctionName != "Greet" || h[1].ScheduledTime == "" || h[2].OrchestrationStatus != "Completed" {
		t.Fatalf("history %s", r.body)
	}
	// PascalCase keys, as Durable Functions writes them.
	if !bytes.Contains(r.body, []byte(`"EventType":"ExecutionStarted"`)) || !bytes.Contains(r.body, []byte(`"Timestamp":`)) {
		t.Fatalf("history keys: %s", r.body)
	}

	r = e.do("GET", WebhookBase+"/instances/"+id+"?showHistory=true&showHistoryOutput=true", "")
	r.json(t, &p)
	h = *p.HistoryEvents
	if string(h[1].Result) != `"Hello Seattle!"` || string(h[2].Result) != `"Hello Seattle!"` {
		t.Fatalf("results with showHistoryOutput: %s", r.body)
	}
}

func TestStatusOfAFailedInstanceIs200Or500OnRequest(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("Fail", "")
	e.complete(id)
	expectCode(t, "failed", e.do("GET", WebhookBase+"/instances/"+id, ""), http.StatusOK)
	r := e.do("GET", WebhookBase+"/instances/"+id+"?returnInternalServerErrorOnFailure=true", "")
	if r.code != http.StatusInternalServerError {
		t.Fatalf("got %s", r)
	}
	var p StatusPayload
	r.json(t, &p)
	if p.RuntimeStatus != "Failed" {
		t.Fatalf("status %s", r.body)
	}
}

func TestStatusRejectsBadInput(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("Echo", "")
	e.complete(id)
	for _, tc := range []struct {
		name, path string
		code       int
	}{
		{"unknown instance", "/instances/nobody", 404},
		{"invalid id", "/instances/@entity", 400},
		{"bad showHistory", "/instances/" + id + "?showHistory=maybe", 400},
		{"bad showInput", "/instances/" + id + "?showInput=2", 400},
		{"unknown operation", "/instances/" + id + "/explode", 404},
	} {
		method := "GET"
		if tc.name == "unknown operation" {
			method = "POST"
		}
		expectCode(t, tc.name, e.do(method, WebhookBase+tc.path, ""), tc.code)
	}
}

func TestListPagesThroughTheContinuationTokenAndOmitsItOnTheLastPage(t *testing.T) {
	e := newEnv(t, Options{})
	for i := 0; i < 5; i++ {
		e.complete(e.start("Echo", fmt.Sprint(i), fmt.Sprintf("page-%d", i)))
	}
	var all []StatusPayload
	token := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("listing does not end")
		}
		var hdr []string
		if token != "" {
			hdr = []string{"x-ms-continuation-token", token}
		}
		r := e.do("GET", WebhookBase+"/instances/?top=2&instanceIdPrefix=page-", "", hdr...)
		expectCode(t, "list", r, http.StatusOK)
		var page []StatusPayload
		r.json(t, &page)
		all = append(all, page...)
		_, has := r.header[http.CanonicalHeaderKey("x-ms-continuation-token")]
		token = r.header.Get("x-ms-continuation-token")
		if len(all) == 5 {
			if has {
				t.Fatalf("last page carries a continuation token header %q", token)
			}
			break
		}
		if token == "" {
			t.Fatalf("page of %d without a token after %d instances", len(page), len(all))
		}
	}
	for _, p := range all {
		if p.RuntimeStatus != "Completed" || p.Input == nil || p.HistoryEvents != nil {
			t.Fatalf("listed %+v", p)
		}
	}
}

func TestListFilters(t *testing.T) {
	e := newEnv(t, Options{})
	done := e.start("Echo", `1`, "f-done")
	e.complete(done)
	e.start("Wait", ``, "f-wait")
	e.waitStatus("f-wait", durable.StatusRunning)
	ids := func(path string) string {
		t.Helper()
		r := e.do("GET", WebhookBase+path, "")
		expectCode(t, path, r, http.StatusOK)
		var page []StatusPayload
		r.json(t, &page)
		var out []string
		for _, p := range page {
			out = append(out, p.InstanceID)
		}
		return strings.Join(out, ",")
	}
	now := time.Now().UTC()
	for path, want := range map[string]string{
		"/instances?runtimeStatus=Completed":                                                 "f-done",
		"/instances?runtimeStatus=Running,Completed":                                         "f-done,f-wait",
		"/instances?runtimeStatus=running":                                                   "f-wait",
		"/instances?instanceIdPrefix=f-w":                                                    "f-wait",
		"/instances?createdTimeFrom=" + now.Add(time.Hour).Format(time.RFC3339):              "",
		"/instances?createdTimeTo=" + now.Add(-time.Hour).Format("2006-01-02T15:04:05.000Z"): "",
		"/instances?createdTimeFrom=" + now.Add(-time.Hour).Format("2006-01-02T15:04:05"):    "f-done,f-wait",
		// What Python's isoformat gives, its '+' unescaped.
		"/instances?createdTimeFrom=" + now.Add(-time.Hour).Format("2006-01-02T15:04:05.000000+00:00"): "f-done,f-wait",
	} {
		if got := ids(path); got != want {
			t.Errorf("%s: got %q, want %q", path, got, want)
		}
	}
	r := e.do("GET", WebhookBase+"/instances?showInput=false&instanceIdPrefix=f-done", "")
	var raw []map[string]json.RawMessage
	r.json(t, &raw)
	if len(raw) != 1 || string(raw[0]["input"]) != "null" || string(raw[0]["output"]) != "1" {
		t.Errorf("showInput=false: %s", r.body)
	}
	r = e.do("GET", WebhookBase+"/instances?instanceIdPrefix=none", "")
	if string(r.body) != "[]" {
		t.Errorf("empty listing %s, want []", r.body)
	}
	for _, bad := range []string{"?runtimeStatus=Sleeping", "?createdTimeFrom=yesterday", "?top=-1", "?top=x", "?showInput=nah"} {
		expectCode(t, bad, e.do("GET", WebhookBase+"/instances"+bad, ""), 400)
	}
	expectCode(t, "bad token", e.do("GET", WebhookBase+"/instances", "", "x-ms-continuation-token", "!!"), 400)
	expectCode(t, "literal null token", e.do("GET", WebhookBase+"/instances", "", "x-ms-continuation-token", "null"), 200)
}

func TestRaiseEventDeliversTheJSONBody(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("Wait", "")
	r := e.do("POST", WebhookBase+"/instances/"+id+"/raiseEvent/Go", `{"approved": true}`)
	expectCode(t, "raise", r, http.StatusAccepted)
	if len(r.body) != 0 {
		t.Errorf("raise answered a body: %s", r.body)
	}
	if st := e.complete(id); string(st.Output) != `{"approved":true}` {
		t.Fatalf("output %s", st.Output)
	}
	// Finished: 410, checked before the body.
	expectCode(t, "raise to a completed instance", e.do("POST", WebhookBase+"/instances/"+id+"/raiseEvent/Go", `{bad`), http.StatusGone)
	expectCode(t, "raise to an unknown instance", e.do("POST", WebhookBase+"/instances/nobody/raiseEvent/Go", `1`), http.StatusNotFound)
}

func TestRaiseEventRejectsBadBodies(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("Wait", "")
	path := WebhookBase + "/instances/" + id + "/raiseEvent/Go"
	expectCode(t, "malformed JSON", e.do("POST", path, `{"a":`), 400)
	expectCode(t, "text/plain", e.do("POST", path, `hello`, "Content-Type", "text/plain"), 400)
	expectCode(t, "invalid id", e.do("POST", WebhookBase+"/instances/@x/raiseEvent/Go", `1`), 400)
	if st, _ := e.c.Status(context.Background(), id); st.RuntimeStatus.IsTerminal() {
		t.Fatalf("bad events reached the instance: %s", st.RuntimeStatus)
	}
	// No body at all is a null payload.
	expectCode(t, "empty body", e.do("POST", path, ``), 202)
	if st := e.complete(id); st.RuntimeStatus != durable.StatusCompleted {
		t.Fatalf("status %s", st.RuntimeStatus)
	}
}

func TestTerminateSuspendAndResume(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("Wait", "")
	e.waitStatus(id, durable.StatusRunning)
	base := WebhookBase + "/instances/" + id
	expectCode(t, "suspend", e.do("POST", base+"/suspend?reason=pause", ""), 202)
	e.waitStatus(id, durable.StatusSuspended)
	expectCode(t, "status of suspended", e.do("GET", base, ""), 202)
	// The npm client sends reason=undefined when it has none.
	expectCode(t, "resume", e.do("POST", base+"/Resume?reason=undefined", ""), 202)
	e.waitStatus(id, durable.StatusRunning)
	expectCode(t, "terminate", e.do("POST", base+"/terminate?reason=enough", ""), 202)
	st := e.complete(id)
	if st.RuntimeStatus != durable.StatusTerminated || string(st.Output) != `"enough"` {
		t.Fatalf("%s %s", st.RuntimeStatus, st.Output)
	}
	for _, op := range []string{"terminate", "suspend", "resume"} {
		expectCode(t, op+" of a terminated instance", e.do("POST", base+"/"+op, ""), http.StatusGone)
		expectCode(t, op+" of an unknown instance", e.do("POST", WebhookBase+"/instances/nobody/"+op, ""), http.StatusNotFound)
		expectCode(t, op+" with an invalid id", e.do("POST", WebhookBase+"/instances/@x/"+op, ""), http.StatusBadRequest)
	}
}

func TestRewindRerunsTheFailedActivity(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("FlakyOnce", "")
	if st := e.complete(id); st.RuntimeStatus != durable.StatusFailed {
		t.Fatalf("first run %s", st.RuntimeStatus)
	}
	expectCode(t, "rewind", e.do("POST", WebhookBase+"/instances/"+id+"/rewind?reason=retry", ""), http.StatusAccepted)
	e.waitStatus(id, durable.StatusCompleted)
	expectCode(t, "rewind of a completed instance", e.do("POST", WebhookBase+"/instances/"+id+"/rewind", ""), http.StatusGone)
	waiting := e.start("Wait", "")
	e.waitStatus(waiting, durable.StatusRunning)
	expectCode(t, "rewind of a running instance", e.do("POST", WebhookBase+"/instances/"+waiting+"/rewind", ""), http.StatusPreconditionFailed)
	expectCode(t, "rewind of an unknown instance", e.do("POST", WebhookBase+"/instances/nobody/rewind", ""), http.StatusNotFound)
}

// TestRewindRerunsAnOrchestratorWhoseCodeFailed: no activity failed, the
// code did; the rewind runs the failed turn again on the current code.
func TestRewindRerunsAnOrchestratorWhoseCodeFailed(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("BuggyOnce", "")
	if st := e.complete(id); st.RuntimeStatus != durable.StatusFailed {
		t.Fatalf("first run %s", st.RuntimeStatus)
	}
	expectCode(t, "rewind", e.do("POST", WebhookBase+"/instances/"+id+"/rewind?reason=fixed", ""), http.StatusAccepted)
	e.waitStatus(id, durable.StatusCompleted)
	if st := e.complete(id); string(st.Output) != `"Hello fix!"` {
		t.Fatalf("output %s", st.Output)
	}
}

// TestNotFoundAndGoneHaveEmptyBodiesAsInDurableFunctions: every route's 404
// for an unknown instance or entity and 410 for a finished instance has an
// empty body, as the Durable Functions extension sends it (its npm client
// makes its error message from the body).
func TestNotFoundAndGoneHaveEmptyBodiesAsInDurableFunctions(t *testing.T) {
	e := newEnv(t, Options{})
	done := e.start("Echo", `1`)
	e.complete(done)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/instances/nobody", http.StatusNotFound},
		{"DELETE", "/instances/nobody", http.StatusNotFound},
		{"POST", "/instances/nobody/raiseEvent/Go", http.StatusNotFound},
		{"POST", "/instances/nobody/terminate", http.StatusNotFound},
		{"POST", "/instances/nobody/suspend", http.StatusNotFound},
		{"POST", "/instances/nobody/resume", http.StatusNotFound},
		{"POST", "/instances/nobody/rewind", http.StatusNotFound},
		{"GET", "/entities/Counter/nobody", http.StatusNotFound},
		{"POST", "/instances/" + done + "/raiseEvent/Go", http.StatusGone},
		{"POST", "/instances/" + done + "/terminate", http.StatusGone},
		{"POST", "/instances/" + done + "/suspend", http.StatusGone},
		{"POST", "/instances/" + done + "/resume", http.StatusGone},
		{"POST", "/instances/" + done + "/rewind", http.StatusGone},
	} {
		for _, base := range []string{WebhookBase, RPCBase} {
			r := e.do(tc.method, base+tc.path, "")
			if r.code != tc.code || len(r.body) != 0 {
				t.Errorf("%s %s: %d %q, want %d with an empty body", tc.method, base+tc.path, r.code, r.body, tc.code)
			}
		}
	}
}

func TestRestartStartsANewInstanceWithTheSameInput(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("Echo", `"again"`)
	e.complete(id)
	r := e.do("POST", WebhookBase+"/instances/"+id+"/restart", "")
	expectCode(t, "restart", r, http.StatusAccepted)
	var p CheckStatusPayload
	r.json(t, &p)
	if p.ID == id || p.ID == "" || r.header.Get("Location") != p.StatusQueryGetURI {
		t.Fatalf("restart answered %s", r.body)
	}
	if st := e.complete(p.ID); string(st.Output) != `"again"` {
		t.Fatalf("restarted output %s", st.Output)
	}
	r = e.do("POST", WebhookBase+"/instances/"+id+"/restart?restartWithNewInstanceId=false&timeout=20", "")
	expectCode(t, "restart under the same id, waiting", r, http.StatusOK)
	if string(r.body) != `"again"` {
		t.Fatalf("body %s", r.body)
	}
	expectCode(t, "restart of an unknown instance", e.do("POST", WebhookBase+"/instances/nobody/restart", ""), http.StatusBadRequest)
	expectCode(t, "bad restartWithNewInstanceId", e.do("POST", WebhookBase+"/instances/"+id+"/restart?restartWithNewInstanceId=perhaps", ""), http.StatusBadRequest)
	running := e.start("Wait", "")
	e.waitStatus(running, durable.StatusRunning)
	expectCode(t, "restart of a running instance under its id", e.do("POST", WebhookBase+"/instances/"+running+"/restart?restartWithNewInstanceId=false", ""), http.StatusConflict)
}

func TestPurgeOneInstance(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.start("Echo", "")
	e.complete(id)
	r := e.do("DELETE", WebhookBase+"/instances/"+id, "")
	expectCode(t, "purge", r, http.StatusOK)
	if string(r.body) != `{"instancesDeleted":1}` {
		t.Fatalf("body %s", r.body)
	}
	expectCode(t, "purge again", e.do("DELETE", WebhookBase+"/instances/"+id, ""), http.StatusNotFound)
	expectCode(t, "status after purge", e.do("GET", WebhookBase+"/instances/"+id, ""), http.StatusNotFound)
	running := e.start("Wait", "")
	expectCode(t, "purge of a running instance", e.do("DELETE", WebhookBase+"/instances/"+running, ""), http.StatusPreconditionFailed)
}

func TestPurgeManyByCreatedTimeAndStatus(t *testing.T) {
	e := newEnv(t, Options{})
	from := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	e.complete(e.start("Echo", "", "pm-1"))
	e.complete(e.start("Fail", "", "pm-2"))
	e.start("Wait", "", "pm-3")
	expectCode(t, "without createdTimeFrom", e.do("DELETE", WebhookBase+"/instances/", ""), http.StatusBadRequest)
	expectCode(t, "purging running instances", e.do("DELETE", WebhookBase+"/instances/?createdTimeFrom="+from+"&runtimeStatus=Running", ""), http.StatusBadRequest)
	r := e.do("DELETE", WebhookBase+"/instances/?createdTimeFrom="+from+"&runtimeStatus=Failed", "")
	expectCode(t, "purge failed", r, http.StatusOK)
	if string(r.body) != `{"instancesDeleted":1}` {
		t.Fatalf("body %s", r.body)
	}
	r = e.do("DELETE", WebhookBase+"/instances?createdTimeFrom="+from, "")
	if r.code != http.StatusOK || string(r.body) != `{"instancesDeleted":1}` {
		t.Fatalf("purge the rest: %s", r)
	}
	r = e.do("DELETE", WebhookBase+"/instances?createdTimeFrom="+from, "")
	if r.code != http.StatusNotFound || string(r.body) != `{"instancesDeleted":0}` {
		t.Fatalf("purge of nothing: %s", r)
	}
	if _, err := e.c.Status(context.Background(), "pm-3"); err != nil {
		t.Fatalf("the running instance was purged: %v", err)
	}
}

func TestStarterRouteBuildsAbsoluteURLsFromTheRequestHost(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("POST", "/api/orchestrators/Echo", `[1,2]`, "Host", "functions.example:8080")
	expectCode(t, "starter", r, http.StatusAccepted)
	var p CheckStatusPayload
	r.json(t, &p)
	if !strings.HasPrefix(p.StatusQueryGetURI, "http://functions.example:8080"+WebhookBase+"/instances/"+p.ID+"?") {
		t.Fatalf("statusQueryGetUri %s", p.StatusQueryGetURI)
	}
	if st := e.complete(p.ID); string(st.Output) != `[1,2]` {
		t.Fatalf("output %s", st.Output)
	}
	// GET works too; a body that is not JSON is a string input.
	r = e.do("GET", "/api/orchestrators/Echo", "")
	expectCode(t, "starter GET", r, http.StatusAccepted)
	r = e.do("POST", "/api/orchestrators/Echo", `plain words`, "Content-Type", "text/plain")
	r.json(t, &p)
	if st := e.complete(p.ID); string(st.Output) != `"plain words"` {
		t.Fatalf("output %s", st.Output)
	}
	expectCode(t, "malformed JSON that says it is JSON", e.do("POST", "/api/orchestrators/Echo", `{"a":`), 400)
	expectCode(t, "unknown function", e.do("POST", "/api/orchestrators/Nope", ``), 400)
	r = e.do("POST", "/api/orchestrators/Hello?timeout=20", `"Cairo"`)
	if r.code != 200 || string(r.body) != `"Hello Cairo!"` {
		t.Fatalf("starter waiting: %s", r)
	}
}

func TestForwardedHeadersAreUsedOnlyWhenTrusted(t *testing.T) {
	for _, trust := range []bool{false, true} {
		e := newEnv(t, Options{TrustForwardedHeaders: trust})
		r := e.do("POST", "/api/orchestrators/Echo", ``, "X-Forwarded-Host", "public.example", "X-Forwarded-Proto", "https")
		var p CheckStatusPayload
		r.json(t, &p)
		if got := strings.HasPrefix(p.StatusQueryGetURI, "https://public.example/"); got != trust {
			t.Errorf("trust=%v: %s", trust, p.StatusQueryGetURI)
		}
	}
}

func TestUnknownRoutesAre404WithAJSONBody(t *testing.T) {
	e := newEnv(t, Options{})
	for _, p := range []string{"/", "/nothing", WebhookBase, WebhookBase + "/nothing", WebhookBase + "/instances/x/raiseEvent"} {
		expectCode(t, p, e.do("GET", p, ""), 404)
	}
	expectCode(t, "PUT on instances", e.do("PUT", WebhookBase+"/instances/x", ""), 404)
}

func TestPanicIsRecoveredLoggedAndAnswered500(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	e.api.mux.HandleFunc("GET /test/panic", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	expectCode(t, "panic", e.do("GET", "/test/panic", ""), http.StatusInternalServerError)
	if !strings.Contains(logs.String(), "kaboom") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
	// The server goes on.
	expectCode(t, "after the panic", e.do("GET", WebhookBase+"/instances", ""), http.StatusOK)
}

func TestClosedRuntimeAnswers503(t *testing.T) {
	e := newEnv(t, Options{})
	_ = e.rt.Close()
	r := e.do("POST", WebhookBase+"/orchestrators/Echo", "")
	expectCode(t, "start on a closed runtime", r, http.StatusServiceUnavailable)
}

func TestClientDataPointsAtTheWebhookURLs(t *testing.T) {
	e := newEnv(t, Options{APIKey: "k&y"})
	cd := e.api.ClientDataFor(e.srv.URL + "/")
	if cd.BaseURL != e.srv.URL+WebhookBase || !strings.HasSuffix(cd.RequiredQueryStringParameters, "&code="+url.QueryEscape("k&y")) {
		t.Fatalf("client data %+v", cd)
	}
	status := strings.Replace(cd.ManagementURLs["statusQueryGetUri"], cd.ManagementURLs["id"], "x", 1)
	if !strings.HasPrefix(status, e.srv.URL+WebhookBase+"/instances/x?") {
		t.Fatalf("status template %s", status)
	}
}
