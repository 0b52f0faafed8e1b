package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveNode runs `durable serve --memory` with args on a loopback port
// until the test ends, and returns its URL.
func serveNode(t *testing.T, args ...string) string {
	t.Helper()
	url, _, _ := serveNodeOut(t, args...)
	return url
}

// serveNodeOut is serveNode that also returns what serve writes to stderr
// and a stop that ends it (at once; the test's end calls it too).
func serveNodeOut(t *testing.T, args ...string) (string, *syncBuffer, func()) {
	t.Helper()
	return serveNodeEnv(t, func(string) string { return "" }, args...)
}

// serveNodeEnv is serveNodeOut with the environment getenv gives.
func serveNodeEnv(t *testing.T, getenv func(string) string, args ...string) (string, *syncBuffer, func()) {
	t.Helper()
	errOut := &syncBuffer{}
	listening := make(chan string, 1)
	c := &cli{stdout: io.Discard, stderr: errOut, getenv: getenv, onListen: func(a string) { listening <- a }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- c.run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--memory", "--log-level", "warn"}, args...))
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("serve exited %d: %s", code, errOut.String())
			}
		})
	}
	t.Cleanup(stop)
	select {
	case addr := <-listening:
		return "http://" + addr, errOut, stop
	case code := <-done:
		done <- code
		t.Fatalf("serve exited %d: %s", code, errOut.String())
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	return "", nil, nil
}

// syncBuffer is a bytes.Buffer the serving goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServePprofIsOffByDefaultAndOnWithTheFlag(t *testing.T) {
	off := serveNode(t)
	if code, _ := get(t, off+"/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Errorf("without --pprof: /debug/pprof/cmdline answered %d, want 404", code)
	}
	on := serveNode(t, "--pprof", "--api-key", "k")
	code, body := get(t, on+"/debug/pprof/cmdline")
	if code != http.StatusOK || !strings.Contains(body, "durable.test") {
		t.Errorf("with --pprof: /debug/pprof/cmdline answered %d %q, want 200 and the command line", code, body)
	}
	if code, body := get(t, on+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("with --pprof: /debug/pprof/ answered %d, want the index of profiles", code)
	}
	// The API still wants its key.
	if code, _ := get(t, on+"/runtime/webhooks/durabletask/instances"); code != http.StatusUnauthorized {
		t.Errorf("the API answered %d without its key, want 401", code)
	}
}

func TestPprofRefusesClientsBeyondLoopback(t *testing.T) {
	h := pprofHandler()
	for _, c := range []struct {
		remote string
		code   int
	}{
		{"127.0.0.1:5000", http.StatusOK},
		{"[::1]:5000", http.StatusOK},
		{"192.168.1.20:5000", http.StatusForbidden},
		{"[2001:db8::1]:5000", http.StatusForbidden},
		{"garbage", http.StatusForbidden},
	} {
		req := httptest.NewRequest("GET", "/debug/pprof/cmdline", nil)
		req.RemoteAddr = c.remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != c.code {
			t.Errorf("from %s: %d, want %d", c.remote, w.Code, c.code)
		}
	}
}

func TestServeServesTheDashboardAndTheNodeRoute(t *testing.T) {
	url := serveNode(t, "--api-key", "k")
	if code, body := get(t, url+"/ui/"); code != http.StatusOK || !strings.Contains(body, "app.js") {
		t.Errorf("/ui/ answered %d, want the dashboard", code)
	}
	if code, _ := get(t, url+"/runtime/webhooks/durabletask/node"); code != http.StatusUnauthorized {
		t.Errorf("node route answered %d without the key, want 401", code)
	}
	if code, body := get(t, url+"/runtime/webhooks/durabletask/node", "x-functions-key", "k"); code != http.StatusOK || !strings.Contains(body, `"partitions":4`) {
		t.Errorf("node route answered %d %s, want the node's JSON", code, body)
	}
	off := serveNode(t, "--dashboard=false")
	if code, _ := get(t, off+"/ui/"); code != http.StatusNotFound {
		t.Errorf("--dashboard=false: /ui/ answered %d, want 404", code)
	}
}

func TestServeServesMetricsBehindTheKey(t *testing.T) {
	url := serveNode(t, "--api-key", "k")
	durableCmd(t, url, map[string]string{"DURABLE_API_KEY": "k"}, "start", "Orchestrator", "--wait").expect(t, 0)
	if code, _ := get(t, url+"/metrics"); code != http.StatusUnauthorized {
		t.Errorf("/metrics answered %d without the key, want 401", code)
	}
	for _, auth := range [][]string{{"x-functions-key", "k"}, {"Authorization", "Bearer k"}} {
		code, body := get(t, url+"/metrics", auth...)
		if code != http.StatusOK || !strings.Contains(body, `durable_instances_ended_total{orchestrator="Orchestrator",status="Completed"} 1`) {
			t.Errorf("/metrics with %s answered %d, want the metrics of the run:\n%.2000s", auth[0], code, body)
		}
	}
	if code, _ := get(t, url+"/metrics", "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Errorf("/metrics answered %d with a wrong bearer key, want 401", code)
	}
	off := serveNode(t, "--metrics=false")
	if code, _ := get(t, off+"/metrics"); code != http.StatusNotFound {
		t.Errorf("--metrics=false: /metrics answered %d, want 404", code)
	}
}

func TestServeTracesToTheConsole(t *testing.T) {
	url, out, stop := serveNodeOut(t, "--traces", "console")
	durableCmd(t, url, nil, "start", "Orchestrator", "--id", "traced", "--wait").expect(t, 0)
	stop() // flushes the spans
	for _, want := range []string{`"Name": "activity Hello"`, `"Name": "orchestration Orchestrator"`, `"Value": "traced"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve --traces console printed no %s:\n%.3000s", want, out.String())
		}
	}
}

func TestServeRejectsAnUnknownTraceExporter(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--traces", "zipkin"}, nil, "--traces"},
		{nil, map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, "--traces"},
		{[]string{"--traces", "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{[]string{"--traces", "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
	} {
		r := durableCmd(t, "", tc.env, append([]string{"serve", "--memory", "--addr", "127.0.0.1:0"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want a usage error naming %s", tc.args, tc.env, r.code, r.stderr, tc.want)
		}
	}
}

// TestServeExportsTracesOverOTLP runs serve with --traces otlp against a
// collector on loopback, over each OTLP protocol, configured only by the
// standard OTEL_* variables: the collector receives the spans of a turn
// and of an activity of the instance, in one trace.
func TestServeExportsTracesOverOTLP(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			col := newCollector(t, protocol)
			env := map[string]string{
				"OTEL_TRACES_EXPORTER":        "otlp", // --traces defaults to it
				"OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
				"OTEL_EXPORTER_OTLP_ENDPOINT": col.endpoint,
				"OTEL_SERVICE_NAME":           "durable-test",
			}
			for k, v := range env {
				t.Setenv(k, v) // the exporter reads them itself
			}
			url, out, stop := serveNodeEnv(t, os.Getenv)
			durableCmd(t, url, nil, "start", "Orchestrator", "--id", "traced-otlp", "--wait").expect(t, 0)
			stop() // flushes the spans
			spans := col.received()
			traces := map[string]bool{}
			for _, want := range []string{"orchestration Orchestrator", "activity Hello"} {
				s, ok := spans[want]
				if !ok {
					t.Fatalf("the collector got no span %q; got %v; serve said:\n%.2000s", want, spans, out.String())
				}
				if s.instance != "traced-otlp" || s.service != "durable-test" {
					t.Errorf("span %q: instance %q, service %q", want, s.instance, s.service)
				}
				traces[s.trace] = true
			}
			if len(traces) != 1 {
				t.Errorf("the spans are in %d traces, want one: %v", len(traces), spans)
			}
		})
	}
}
