package sidecar_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// jsWorkerDir holds the Node scripts and the package.json that pins
// @microsoft/durabletask-js; `npm ci` there installs it (.ci/run does).
const jsWorkerDir = "testdata/jsworker"

// jsEntityApp is the Go side of entity.js: an orchestration that calls the
// JavaScript entity "JSCounter".
func jsEntityApp(rt *durable.Runtime) {
	_ = rt.RegisterOrchestrator("GoCallsJSCounter", func(ctx *orchestration.Context) (any, error) {
		var key string
		if err := ctx.Input(&key); err != nil {
			return nil, err
		}
		id := orchestration.EntityID{Name: "JSCounter", Key: key}
		added, err := orchestration.Await[int](ctx.CallEntity(id, "add", 2))
		if err != nil {
			return nil, fmt.Errorf("add: %w", err)
		}
		out := map[string]any{"added": added}
		if _, err := orchestration.Await[any](ctx.CallEntity(id, "boom", nil)); err != nil {
			out["failure"] = err.Error()
		}
		got, err := orchestration.Await[int](ctx.CallEntity(id, "get", nil))
		if err != nil {
			return nil, fmt.Errorf("get: %w", err)
		}
		out["got"] = got
		return out, nil
	})
}

// TestJSWorkerServesAnEntity runs the unmodified @microsoft/durabletask-js
// worker and client (testdata/jsworker/entity.js) against a node whose Go
// orchestration calls the worker's JavaScript entity: signals from the
// client, state read by GetEntity, a failed operation rolled back, calls
// (a result, a failure) from the Go orchestration, a signal the entity
// sends, and a query.
func TestJSWorkerServesAnEntity(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(jsWorkerDir, "node_modules", "@microsoft", "durabletask-js", "package.json"))
	}
	if err != nil {
		msg := "the @microsoft/durabletask-js npm package is not installed (run `npm ci` in sidecar/testdata/jsworker; .ci/run does): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	n := startNode(t, "", sidecarOpts(), jsEntityApp)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "entity.js")
	cmd.Dir = jsWorkerDir
	cmd.Env = append(os.Environ(), "DURABLE_GRPC="+n.addr, "DURABLE_TAG="+time.Now().Format("150405.000"))
	out, err := cmd.CombinedOutput()
	t.Logf("entity.js:\n%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || lines[len(lines)-1] != "ALL OK" {
		t.Fatalf("the JS worker failed: %v", err)
	}
}
