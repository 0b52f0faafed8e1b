package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/durable-go/durable/orchestration"
)

func TestOldOrderFinishesOnTheOldPathAndNewOneOnTheNewPath(t *testing.T) {
	var out bytes.Buffer
	res, err := run(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}

	// Before the deployment: the unguarded change would fail the running
	// order at the SendReceipt call, the guarded one replays fine.
	if res.Unguarded.OK() {
		t.Fatalf("unguarded v2 passed the check:\n%s", res.Unguarded)
	}
	o := res.Unguarded.Orchestrator("Order")
	if o == nil || o.WouldFail != 1 || len(o.Failures) != 1 {
		t.Fatalf("unguarded report:\n%s", res.Unguarded)
	}
	var nd *orchestration.NonDeterminismError
	if !errors.As(o.Failures[0].Err, &nd) || !strings.Contains(nd.Requested, "SendReceipt") || !strings.Contains(nd.CallSite, "main.go:") {
		t.Fatalf("failure: %v", o.Failures[0].Err)
	}
	if !res.Guarded.OK() || res.Guarded.Orchestrator("Order").Fine != 1 {
		t.Fatalf("guarded report:\n%s", res.Guarded)
	}

	// After it: each order on its own path, the marker only in the new one.
	if want := []string{"charged 42", "shipped"}; !reflect.DeepEqual(res.OldOutput, want) {
		t.Errorf("old order: %q, want %q", res.OldOutput, want)
	}
	if len(res.NewOutput) != 3 || res.NewOutput[0] != "charged 7" || !strings.HasPrefix(res.NewOutput[1], "receipt sent for order-2-") || res.NewOutput[2] != "shipped" {
		t.Errorf("new order: %q", res.NewOutput)
	}
	if len(res.OldMarkers) != 0 || !reflect.DeepEqual(res.NewMarkers, []string{"send-receipt"}) {
		t.Errorf("markers: old %v, new %v", res.OldMarkers, res.NewMarkers)
	}
	if !strings.Contains(out.String(), "patch markers in history: [send-receipt]") {
		t.Errorf("output:\n%s", out.String())
	}
}
