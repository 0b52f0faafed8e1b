package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsWorkerDir holds the Node script and the package.json that pins
// @microsoft/durabletask-js; `npm ci` there installs it (.ci/run does).
const jsWorkerDir = "../../sidecar/testdata/jsworker"

// lockedBuffer is a bytes.Buffer that serve's logger and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestJSWorkerRunsItsOrchestrationsOnDurableServe runs the unmodified
// @microsoft/durabletask-js worker and client against `durable serve
// --grpc`: hello cities, fan-out/fan-in, an event raced against a timer,
// a sub-orchestration, continue-as-new, terminate, suspend/resume, purge,
// a JavaScript entity signalled and read, and a restart of the node while
// the worker waits (the worker reconnects to the node's new process, the
// waiting instance gets its event, the entity keeps its state).
func TestJSWorkerRunsItsOrchestrationsOnDurableServe(t *testing.T) {
	node, err := exec.LookPath("node")
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
	dir := t.TempDir()
	logs := &lockedBuffer{}
	serve := func(grpcAddr string) (addr string, stop func()) {
		t.Helper()
		listening := make(chan string, 1)
		c := &cli{stdout: io.Discard, stderr: logs, getenv: func(string) string { return "" }, onGRPCListen: func(a string) { listening <- a }}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- c.run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--grpc", grpcAddr, "--data", dir, "--log-level", "warn"})
		}()
		select {
		case addr = <-listening:
		case code := <-done:
			cancel()
			t.Fatalf("serve exited %d: %s", code, logs.String())
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatal("serve did not start")
		}
		return addr, func() {
			cancel() // what SIGINT does
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("serve exited %d: %s", code, logs.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serve did not stop")
			}
		}
	}
	addr, stop := serve("127.0.0.1:0")
	defer func() { stop() }()

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "worker.js")
	cmd.Dir = jsWorkerDir
	cmd.Env = append(os.Environ(), "DURABLE_GRPC="+addr, "DURABLE_TAG="+time.Now().Format("150405.000"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out []string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		out = append(out, line)
		t.Log("worker.js: " + line)
		if line == "RESTART NOW" {
			stop()
			_, stop = serve(addr) // the same port: the worker reconnects to it
			if _, err := io.WriteString(stdin, "restarted\n"); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if err != nil || len(out) == 0 || out[len(out)-1] != "ALL OK" {
		t.Fatalf("the JS worker failed: %v\nstdout:\n%s\nstderr:\n%s\nnode log:\n%s", err, strings.Join(out, "\n"), stderr.String(), logs.String())
	}
}
