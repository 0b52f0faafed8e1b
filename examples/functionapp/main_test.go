package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/httpapi"
)

// TestTheTutorialFlow does what README.md shows: POST to the starter, then
// follow statusQueryGetUri until the output is there.
func TestTheTutorialFlow(t *testing.T) {
	rt, err := durable.Open(durable.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := rt.RegisterOrchestrator("Orchestrator", Orchestrator); err != nil {
		t.Fatal(err)
	}
	if err := rt.RegisterActivity("Hello", Hello); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(rt.Client()))
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/api/orchestrators/Orchestrator", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var p httpapi.CheckStatusPayload
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start answered %d: %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(p.StatusQueryGetURI, srv.URL+"/runtime/webhooks/durabletask/instances/"+p.ID) {
		t.Fatalf("statusQueryGetUri %s", p.StatusQueryGetURI)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.StatusQueryGetURI)
		if err != nil {
			t.Fatal(err)
		}
		var st httpapi.StatusPayload
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			if st.RuntimeStatus != "Completed" || string(st.Output) != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
				t.Fatalf("final status %+v", st)
			}
			break
		}
		if resp.StatusCode != http.StatusAccepted || time.Now().After(deadline) {
			t.Fatalf("status answered %d (%s)", resp.StatusCode, st.RuntimeStatus)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Bad input is a 400, not a 500.
	resp, err = http.Post(srv.URL+"/api/orchestrators/Orchestrator", "application/json", strings.NewReader("{oops"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed input answered %d", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL+"/api/orchestrators/Nope", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown orchestrator answered %d", resp.StatusCode)
	}
}
