package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestEachOrderRunsTheVersionItStartedOn(t *testing.T) {
	var out bytes.Buffer
	res, err := run(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// Dropping the old code was refused: the waiting order has no code.
	if o := res.Refused.Orchestrator("Order"); res.Refused.OK() || o == nil || o.Version != "" || o.Unregistered != 1 {
		t.Fatalf("refused report:\n%s", res.Refused)
	}
	if res.Old.Version != "" || string(res.Old.Output) != `["charged `+res.Old.InstanceID+`","shipped"]` {
		t.Errorf("old order: version %q, output %s", res.Old.Version, res.Old.Output)
	}
	id := res.New.InstanceID
	if res.New.Version != "2" || string(res.New.Output) != `["charged `+id+`","receipt for `+id+`","shipped on version 2"]` {
		t.Errorf("new order: version %q, output %s", res.New.Version, res.New.Output)
	}
	for _, want := range []string{"without registered code", "version (unversioned)", "version 2, output"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
