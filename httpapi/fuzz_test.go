package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fuzzEnv is one runtime shared by all the inputs of a fuzz target; its log
// is watched for panics.
func fuzzEnv(f *testing.F) (*env, *bytes.Buffer) {
	logs := &bytes.Buffer{}
	e := newEnv(f, Options{
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError})),
		MaxBodyBytes: 4096,
		MaxWait:      20 * time.Millisecond,
	})
	return e, logs
}

// serve runs one request through the handler (no network) and checks the
// answer is never a 500 (except the status of a Failed instance asked for
// with returnInternalServerErrorOnFailure), every other error answer has
// a JSON body (404 and 410 may be empty, as Durable Functions sends them),
// and nothing panicked.
func serve(t *testing.T, e *env, logs *bytes.Buffer, req *http.Request) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.api.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("%s %s hangs:\n%s", req.Method, req.URL, buf[:n])
	}
	if rec.Code == http.StatusInternalServerError {
		var p StatusPayload
		if json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.RuntimeStatus != "Failed" {
			t.Fatalf("%s %s answered 500: %s", req.Method, req.URL, rec.Body)
		}
	}
	emptyAsDF := (rec.Code == http.StatusNotFound || rec.Code == http.StatusGone) && rec.Body.Len() == 0
	if rec.Code >= 400 && !emptyAsDF && !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("%s %s answered %d without a JSON body: %q", req.Method, req.URL, rec.Code, rec.Body)
	}
	if strings.Contains(logs.String(), "panic") {
		t.Fatalf("%s %s panicked: %s", req.Method, req.URL, logs)
	}
}

func FuzzRoutes(f *testing.F) {
	for _, s := range []struct{ method, path, query, body, contentType, token string }{
		{"POST", WebhookBase + "/orchestrators/Echo", "", `{"a":1}`, "application/json", ""},
		{"POST", WebhookBase + "/orchestrators/Echo/fz-1", "timeout=0.01", `[1,`, "application/json", ""},
		{"POST", WebhookBase + "/orchestrators/Fail", "timeout=1&returnInternalServerErrorOnFailure=true", ``, "", ""},
		{"GET", WebhookBase + "/instances/fz-1", "showHistory=true&showHistoryOutput=true", "", "", ""},
		{"GET", RPCBase + "/instances/", "runtimeStatus=Running,Bogus&top=3", "", "", "AAAAAAAAAAE"},
		{"GET", WebhookBase + "/instances", "createdTimeFrom=2024-01-01T00:00:00.000Z&createdTimeTo=x", "", "", "null"},
		{"DELETE", WebhookBase + "/instances/", "createdTimeFrom=2024-01-01", "", "", ""},
		{"DELETE", WebhookBase + "/instances/fz-1", "", "", "", ""},
		{"POST", WebhookBase + "/instances/fz-1/raiseEvent/Go", "", `"x"`, "application/json", ""},
		{"POST", WebhookBase + "/instances/fz-1/Terminate", "reason=undefined", "", "", ""},
		{"POST", WebhookBase + "/instances/fz-1/restart", "restartWithNewInstanceId=false&timeout=1e308", "", "", ""},
		{"POST", WebhookBase + "/instances/fz-1/rewind", "", "", "", ""},
		{"POST", WebhookBase + "/entities/Counter/k", "op=add", `{`, "application/json", ""},
		{"GET", WebhookBase + "/entities/counter", "fetchState=true&top=1", "", "", "zz"},
		{"GET", "/api/orchestrators/Hello", "timeout=0", `"Oslo"`, "text/plain", ""},
		{"PATCH", WebhookBase + "/instances/%2F%00", "", "", "", ""},
	} {
		f.Add(s.method, s.path, s.query, s.body, s.contentType, s.token)
	}
	e, logs := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, method, path, query, body, contentType, token string) {
		req, err := http.NewRequest(method, "http://127.0.0.1:7071"+path+"?"+query, strings.NewReader(body))
		if err != nil {
			return // not a request net/http can build: nothing to serve
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if token != "" {
			req.Header.Set("x-ms-continuation-token", token)
		}
		serve(t, e, logs, req)
	})
}

func FuzzStartBody(f *testing.F) {
	for _, s := range []struct{ name, id, body string }{
		{"Echo", "", `{"nested":{"a":[1,2,{"b":null}]}}`},
		{"Echo", "fz-start", `   "padded"   `},
		{"Hello", "@entity", `"x"`},
		{"Nope", "", ``},
		{"Echo", "a/b", `1`},
		{"Echo", "", "\xff\xfe"},
		{"Echo", "", `{"a":1}{"b":2}`},
		{"Echo", strings.Repeat("i", 300), `1`},
	} {
		f.Add(s.name, s.id, s.body)
	}
	e, logs := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, name, id, body string) {
		path := WebhookBase + "/orchestrators/" + url.PathEscape(name)
		if id != "" {
			path += "/" + url.PathEscape(id)
		}
		req, err := http.NewRequest("POST", "http://127.0.0.1:7071"+path, strings.NewReader(body))
		if err != nil {
			return // not a request net/http can build: nothing to serve
		}
		req.Header.Set("Content-Type", "application/json")
		serve(t, e, logs, req)
	})
}

// FuzzEntityRoutes: the entity routes with any method, name, key,
// operation, body and Content-Type answer without a 500 or a panic.
func FuzzEntityRoutes(f *testing.F) {
	for _, s := range []struct{ method, name, key, op, body, contentType string }{
		{"POST", "Counter", "k", "add", `5`, "application/json"},
		{"POST", "Counter", "k", "add", `five`, "text/plain"},
		{"POST", "Counter", "$", "", ``, ""},
		{"DELETE", "Counter", "k", "", ``, ""},
		{"GET", "Counter", "k", "", ``, ""},
		{"GET", "counter", "", "", ``, ""},
		{"POST", "Nope", "k", "x", `{`, "application/json"},
		{"POST", "Counter", strings.Repeat("k", 300), "add", `1`, "application/json"},
		{"POST", "Co@unter", "k\x01", "add", `1`, "application/json"},
		{"PUT", "Counter", "k", "", ``, ""},
	} {
		f.Add(s.method, s.name, s.key, s.op, s.body, s.contentType)
	}
	e, logs := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, method, name, key, op, body, contentType string) {
		path := WebhookBase + "/entities/" + url.PathEscape(name)
		if key != "" {
			path += "/" + url.PathEscape(key)
		}
		if op != "" {
			path += "?op=" + url.QueryEscape(op)
		}
		req, err := http.NewRequest(method, "http://127.0.0.1:7071"+path, strings.NewReader(body))
		if err != nil {
			return // not a request net/http can build: nothing to serve
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		serve(t, e, logs, req)
	})
}
