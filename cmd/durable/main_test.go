package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/httpapi"
	"github.com/durable-go/durable/orchestration"
)

// node is the sample app on an in-memory runtime behind an httptest server.
func node(t *testing.T, key string) string {
	t.Helper()
	url, _ := nodeWith(t, key, registerSampleApp)
	return url
}

// nodeWith is node with the functions register registers.
func nodeWith(t *testing.T, key string, register func(rt *durable.Runtime) error) (string, *durable.Runtime) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := durable.Open(durable.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := register(rt); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(rt.Client(), httpapi.Options{APIKey: key, Logger: quiet})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.StopWaits()
		srv.Close()
		_ = rt.Close()
	})
	return srv.URL, rt
}

type result struct {
	code           int
	stdout, stderr string
}

// durableCmd runs the command with args against addr and returns what it
// printed. env gives the environment variables it sees.
func durableCmd(t *testing.T, addr string, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{stdout: &out, stderr: &errOut, getenv: func(k string) string {
		if k == "DURABLE_ADDR" {
			return addr
		}
		return env[k]
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := c.run(ctx, args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func (r result) expect(t *testing.T, code int, stdout ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Fatalf("stdout lacks %q:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
}

// field returns the value of a NAME  value line of a printed status.
func field(t *testing.T, out, name string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("no %s in:\n%s", name, out)
	return ""
}

func TestStartWaitShowsProgressAndPrintsTheFinalStatus(t *testing.T) {
	addr := node(t, "")
	r := durableCmd(t, addr, nil, "start", "Orchestrator", "--wait")
	r.expect(t, 0, "Completed", `["Hello Tokyo!","Hello Seattle!","Hello London!"]`)
	id := field(t, r.stdout, "ID")
	if !strings.Contains(r.stderr, id+"  Completed") {
		t.Fatalf("no progress on stderr:\n%s", r.stderr)
	}
	r = durableCmd(t, addr, nil, "start", "FanOutFanIn", "10", "--wait", "--json")
	r.expect(t, 0)
	var st httpapi.StatusPayload
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || string(st.Output) != "110" {
		t.Fatalf("FanOutFanIn 10: %v %s", err, r.stdout)
	}
	r = durableCmd(t, addr, nil, "start", "--input", `["Oslo"]`, "HelloCities", "--wait", "--id", "cities-1")
	r.expect(t, 0, "cities-1", `["Hello Oslo!"]`)
}

func TestStartWaitOfAFailingInstanceExits1(t *testing.T) {
	addr := node(t, "")
	r := durableCmd(t, addr, nil, "start", "FanOutFanIn", "--wait", "--", "-1")
	r.expect(t, 1, "Failed", "input n must be 0..10000")
	if !strings.Contains(r.stderr, "ended Failed") {
		t.Fatalf("stderr %s", r.stderr)
	}
}

func TestWaitForApprovalAnswersTheApprovalEvent(t *testing.T) {
	addr := node(t, "")
	for _, tc := range []struct{ id, payload, want string }{{"yes-1", "true", `"approved"`}, {"no-1", "false", `"rejected"`}} {
		durableCmd(t, addr, nil, "start", "WaitForApproval", "--id", tc.id).expect(t, 0, tc.id)
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := durableCmd(t, addr, nil, "status", tc.id)
			if strings.Contains(r.stdout, `"waiting"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("custom status never waiting: %s", r.stdout)
			}
			time.Sleep(10 * time.Millisecond)
		}
		durableCmd(t, addr, nil, "raise", tc.id, "Approval", tc.payload).expect(t, 0, "raised Approval to "+tc.id)
		for {
			r := durableCmd(t, addr, nil, "status", tc.id, "--json")
			var st httpapi.StatusPayload
			_ = json.Unmarshal([]byte(r.stdout), &st)
			if st.RuntimeStatus == "Completed" {
				if string(st.Output) != tc.want {
					t.Fatalf("output %s, want %s", st.Output, tc.want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("never completed: %s", r.stdout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	r := durableCmd(t, addr, nil, "history", "yes-1")
	r.expect(t, 0, "ExecutionStarted", "TimerCreated", "EventRaised", "Approval", "payload true", `result "approved"`)
	r = durableCmd(t, addr, nil, "raise", "yes-1", "Approval", "true")
	if r.code != 1 || !strings.Contains(r.stderr, "has finished") {
		t.Fatalf("raise to a finished instance: %+v", r)
	}
}

func TestListPrintsATableAndJSONAndFollowsPages(t *testing.T) {
	addr := node(t, "")
	for _, id := range []string{"l-1", "l-2", "l-3"} {
		durableCmd(t, addr, nil, "start", "Orchestrator", "--id", id, "--wait").expect(t, 0)
	}
	r := durableCmd(t, addr, nil, "list")
	r.expect(t, 0, "ID", "NAME", "STATUS", "l-1", "l-2", "l-3", "Completed")
	r = durableCmd(t, addr, nil, "list", "--top", "1")
	r.expect(t, 0, "l-1")
	if strings.Contains(r.stdout, "l-2") || !strings.Contains(r.stderr, "--all") {
		t.Fatalf("first page only, with a hint: %+v", r)
	}
	r = durableCmd(t, addr, nil, "list", "--top", "1", "--all", "--json", "--prefix", "l-")
	r.expect(t, 0)
	var list []httpapi.StatusPayload
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 3 {
		t.Fatalf("--all --json: %v %s", err, r.stdout)
	}
	r = durableCmd(t, addr, nil, "list", "--status", "Running", "--json")
	r.expect(t, 0)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("no running instances: %s", r.stdout)
	}
	durableCmd(t, addr, nil, "list", "--status", "Sleepy").expect(t, 1)

	r = durableCmd(t, addr, nil, "history", "l-1")
	r.expect(t, 0, "TIME", "EVENT", "ExecutionStarted", "TaskCompleted", "Hello", `"Hello Tokyo!"`, "ExecutionCompleted")
	r = durableCmd(t, addr, nil, "history", "--json", "l-1")
	var events []httpapi.HistoryEvent
	if err := json.Unmarshal([]byte(r.stdout), &events); err != nil || len(events) != 5 {
		t.Fatalf("history --json: %v %s", err, r.stdout)
	}
}

func TestTerminateSuspendResumeRestartAndPurge(t *testing.T) {
	addr := node(t, "")
	durableCmd(t, addr, nil, "start", "WaitForApproval", "--id", "op-1").expect(t, 0)
	durableCmd(t, addr, nil, "suspend", "op-1", "--reason", "lunch").expect(t, 0, "suspended op-1")
	durableCmd(t, addr, nil, "resume", "op-1").expect(t, 0, "resumed op-1")
	durableCmd(t, addr, nil, "terminate", "op-1", "--reason", "no longer needed").expect(t, 0, "terminated op-1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := durableCmd(t, addr, nil, "status", "op-1")
		if field(t, r.stdout, "STATUS") == "Terminated" {
			if field(t, r.stdout, "OUTPUT") != `"no longer needed"` {
				t.Fatalf("terminated output: %s", r.stdout)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never terminated: %s", r.stdout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := durableCmd(t, addr, nil, "terminate", "op-1")
	if r.code != 1 || !strings.Contains(r.stderr, "has finished") {
		t.Fatalf("terminate again: %+v", r)
	}
	r = durableCmd(t, addr, nil, "restart", "op-1", "--json")
	r.expect(t, 0)
	var p httpapi.CheckStatusPayload
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.ID == "" || p.ID == "op-1" {
		t.Fatalf("restart: %v %s", err, r.stdout)
	}
	durableCmd(t, addr, nil, "terminate", p.ID).expect(t, 0)
	durableCmd(t, addr, nil, "purge", "op-1").expect(t, 0, "purged 1 instance")
	r = durableCmd(t, addr, nil, "purge", "op-1")
	if r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("purge again: %+v", r)
	}
	durableCmd(t, addr, nil, "start", "Orchestrator", "--wait").expect(t, 0)
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	durableCmd(t, addr, nil, "purge", "--from", from, "--status", "Completed").expect(t, 0, "purged 1 instance")
	durableCmd(t, addr, nil, "purge", "--from", from, "--status", "Completed").expect(t, 0, "purged 0 instances")
}

func TestBadUsageExits2AndFailuresExit1(t *testing.T) {
	addr := node(t, "")
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"start"},
		{"start", "Orchestrator", "{not json"},
		{"status"},
		{"status", "a", "b"},
		{"raise", "id"},
		{"raise", "id", "Ev", "nope"},
		{"list", "--top", "0"},
		{"purge"},
		{"purge", "id", "--from", "2024-01-01T00:00:00Z"},
		{"status", "x", "--addr", "ftp://host"},
		{"serve", "--log-level", "loud"},
		{"status", "--bogus", "x"},
	} {
		if r := durableCmd(t, addr, nil, args...); r.code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
	durableCmd(t, addr, nil, "help").expect(t, 0, "serve", "start", "purge")
	durableCmd(t, addr, nil, "start", "-h").expect(t, 0)
	r := durableCmd(t, addr, nil, "status", "nobody")
	if r.code != 1 || !strings.Contains(r.stderr, "instance nobody not found") {
		t.Fatalf("unknown instance: %+v", r)
	}
	r = durableCmd(t, addr, nil, "start", "NoSuchOrchestrator")
	if r.code != 1 || !strings.Contains(r.stderr, "not registered") {
		t.Fatalf("unknown orchestrator: %+v", r)
	}
	r = durableCmd(t, "http://127.0.0.1:1", nil, "status", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach the node") {
		t.Fatalf("unreachable node: %+v", r)
	}
}

func TestAPIKeyFromFlagOrEnvironment(t *testing.T) {
	addr := node(t, "k3y")
	r := durableCmd(t, addr, nil, "list")
	if r.code != 1 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("without the key: %+v", r)
	}
	durableCmd(t, addr, nil, "list", "--api-key", "k3y").expect(t, 0, "ID")
	durableCmd(t, addr, map[string]string{"DURABLE_API_KEY": "k3y"}, "start", "Orchestrator", "--wait").expect(t, 0, "Completed")
}

func TestServeKeepsItsDataAcrossACleanShutdown(t *testing.T) {
	dir := t.TempDir()
	serve := func() (addr string, stop func()) {
		t.Helper()
		var errOut bytes.Buffer
		listening := make(chan string, 1)
		c := &cli{stdout: io.Discard, stderr: &errOut, getenv: func(string) string { return "" }, onListen: func(a string) { listening <- a }}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- c.run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-level", "warn"})
		}()
		select {
		case addr = <-listening:
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, errOut.String())
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not start")
		}
		return "http://" + addr, func() {
			cancel() // what SIGINT does
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("serve exited %d: %s", code, errOut.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop")
			}
		}
	}
	addr, stop := serve()
	durableCmd(t, addr, nil, "start", "Orchestrator", "--id", "kept", "--wait").expect(t, 0)
	durableCmd(t, addr, nil, "start", "WaitForApproval", "--id", "waiting").expect(t, 0)
	stop()
	addr, stop = serve()
	defer stop()
	r := durableCmd(t, addr, nil, "status", "kept")
	r.expect(t, 0, "Completed", "Hello London!")
	// The instance that waited across the restart still gets its event.
	durableCmd(t, addr, nil, "raise", "waiting", "Approval", "true").expect(t, 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = durableCmd(t, addr, nil, "status", "waiting")
		if field(t, r.stdout, "STATUS") == "Completed" {
			if field(t, r.stdout, "OUTPUT") != `"approved"` {
				t.Fatalf("output: %s", r.stdout)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never completed: %s", r.stdout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSignalAndReadTheCounterEntity(t *testing.T) {
	addr := node(t, "")
	durableCmd(t, addr, nil, "signal", "Counter", "c1", "add", "5").expect(t, 0, "signalled add to Counter/c1")
	durableCmd(t, addr, nil, "signal", "Counter", "c1", "add", "2").expect(t, 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := durableCmd(t, addr, nil, "entity", "Counter", "c1")
		if r.code == 0 && strings.TrimSpace(r.stdout) == "7" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter never reached 7: %+v", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
	durableCmd(t, addr, nil, "entities", "--state").expect(t, 0, "NAME", "counter", "c1", "7")
	r := durableCmd(t, addr, nil, "entities", "Counter", "--json")
	r.expect(t, 0, `"key": "c1"`)
	r = durableCmd(t, addr, nil, "entity", "Counter", "nothing")
	if r.code != 1 || !strings.Contains(r.stderr, "has no state") {
		t.Fatalf("missing entity: %+v", r)
	}
	r = durableCmd(t, addr, nil, "signal", "Nope", "k", "add", "1")
	if r.code != 1 || !strings.Contains(r.stderr, "not registered") {
		t.Fatalf("unknown entity: %+v", r)
	}
	durableCmd(t, addr, nil, "signal", "Counter", "c1", "add", "{x").expect(t, 2)
}

func TestHistoryShowsPatchMarkers(t *testing.T) {
	addr, rt := nodeWith(t, "", func(rt *durable.Runtime) error {
		return rt.RegisterOrchestrator("Patched", func(ctx *orchestration.Context) (any, error) {
			return ctx.IsPatched("v2"), nil
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := rt.Client().Start(ctx, "Patched", nil, durable.WithInstanceID("p-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Client().WaitForCompletion(ctx, id); err != nil {
		t.Fatal(err)
	}
	durableCmd(t, addr, nil, "history", "p-1").expect(t, 0, "PatchMarker", "v2", "ExecutionCompleted", "result true")
}

func TestStartPicksAVersionAndStatusShowsIt(t *testing.T) {
	addr, _ := nodeWith(t, "", func(rt *durable.Runtime) error {
		for _, v := range []string{"1", "2"} {
			v := v
			if err := rt.RegisterOrchestrator("Order", func(ctx *orchestration.Context) (any, error) {
				return "ran " + v, nil
			}, durable.Version(v)); err != nil {
				return err
			}
		}
		return nil
	})
	out := durableCmd(t, addr, nil, "start", "Order", "--id", "o-1", "--version", "1", "--wait")
	out.expect(t, 0, "Completed")
	if got := field(t, out.stdout, "VERSION"); got != "1" {
		t.Fatalf("VERSION %q", got)
	}
	if got := field(t, out.stdout, "OUTPUT"); got != `"ran 1"` {
		t.Fatalf("OUTPUT %q", got)
	}
	durableCmd(t, addr, nil, "start", "Order", "--id", "o-2", "--wait").expect(t, 0, `"ran 2"`)
	r := durableCmd(t, addr, nil, "status", "o-2", "--json")
	r.expect(t, 0)
	var st httpapi.StatusPayload
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Version != "2" || st.VersionNotRegistered {
		t.Fatalf("status JSON %s: %v", r.stdout, err)
	}
	durableCmd(t, addr, nil, "history", "o-1").expect(t, 0, "ExecutionStarted", "version 1")
	bad := durableCmd(t, addr, nil, "start", "Order", "--version", "9")
	if bad.code != 1 || !strings.Contains(bad.stderr, `version "9"`) {
		t.Fatalf("start on an unregistered version: exit %d\n%s%s", bad.code, bad.stdout, bad.stderr)
	}
}

// TestSampleOrchestratorsTakeEmptyAndNullAsNoInput starts each sample
// orchestrator whose input is optional through the HTTP API with the bodies
// a caller sends for "no input": none, null, and "" (what the
// durable-functions npm client's startNew sends without input). Each must
// complete as with no input.
func TestSampleOrchestratorsTakeEmptyAndNullAsNoInput(t *testing.T) {
	addr := node(t, "")
	cities := `["Hello Tokyo!","Hello Seattle!","Hello London!"]`
	bodies := []string{``, `null`, `""`, ` "" `}
	for _, tc := range []struct {
		name string
		want []string // per body
	}{
		{"Orchestrator", []string{cities, cities, cities, cities}},
		{"HelloCities", []string{cities, cities, cities, cities}},
		{"FanOutFanIn", []string{`0`, `0`, `0`, `0`}},
		// Every run counts on the same counter, the empty key's.
		{"Tally", []string{`1`, `2`, `3`, `4`}},
	} {
		for i, body := range bodies {
			t.Run(fmt.Sprintf("%s/%q", tc.name, body), func(t *testing.T) {
				id := fmt.Sprintf("optional-%s-%d", strings.ToLower(tc.name), i)
				url := addr + httpapi.WebhookBase + "/orchestrators/" + tc.name + "/" + id + "?timeout=30&pollingInterval=1"
				resp, err := http.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				got, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || string(got) != tc.want[i] {
					t.Fatalf("start with body %q: %d %s, want 200 %s", body, resp.StatusCode, got, tc.want[i])
				}
			})
		}
	}
}
