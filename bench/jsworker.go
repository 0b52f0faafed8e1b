package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/sidecar"
)

// W1 with a JavaScript worker (-jsworker): the same hello-cities, started
// and verified the same way through the Go Client, but its orchestrator and
// activity are JavaScript, served by the unmodified @microsoft/durabletask-js
// worker over the gRPC sidecar on loopback. The row's jsworker_ratio is its
// throughput over the Go W1 row of the same run.

// defaultJSWorkerDir is sidecar/testdata/jsworker of the source tree, which
// holds bench.js and (after `npm ci`) the SDK.
func defaultJSWorkerDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "sidecar/testdata/jsworker"
	}
	return filepath.Join(filepath.Dir(file), "..", "sidecar", "testdata", "jsworker")
}

func runW1JS(ctx context.Context, w *Workload, cfg Config, jsDir string, goRow *Result) *Result {
	n := orDefault(cfg.N, w.DefaultN)
	conc := orDefault(cfg.Concurrency, n)
	r := newResult(w, cfg, n)
	r.System = "durable+js-worker"
	r.Concurrency = conc
	dir, err := os.MkdirTemp(cfg.Dir, "W1js-*")
	if err != nil {
		return failed(r, err)
	}
	defer os.RemoveAll(dir)
	rt, err := durable.Open(durable.Options{Dir: dir, Partitions: cfg.Partitions, NoSync: cfg.NoSync, Logger: cfg.Logger})
	if err != nil {
		return failed(r, err)
	}
	defer rt.Close()
	g, s, err := sidecar.NewServer(rt, sidecar.Options{Logger: cfg.Logger})
	if err != nil {
		return failed(r, err)
	}
	if err := rt.Start(); err != nil {
		return failed(r, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return failed(r, err)
	}
	go func() { _ = g.Serve(ln) }()
	defer func() { s.Close(); g.Stop() }()

	stop, err := startJSWorker(ctx, jsDir, ln.Addr().String())
	if err != nil {
		return failed(r, err)
	}
	defer stop()
	if err := warmUp(ctx, rt.Client()); err != nil {
		return failed(r, fmt.Errorf("the JavaScript worker did not serve a first instance: %w", err))
	}
	lat, sp, wrong, err := runInstances(ctx, []*durable.Runtime{rt}, n, conc, "HelloCities", nil, checkHello)
	fill(r, lat, sp, n, wrong, err)
	r.Activities = 3 * n
	if goRow != nil && goRow.Verified && r.Verified && goRow.PerSecond > 0 {
		addNote(r, fmt.Sprintf("x%.2f of the Go W1 row of this run (orchestrator and activity in one node process over gRPC on loopback)", r.PerSecond/goRow.PerSecond))
	}
	return r
}

// startJSWorker runs bench.js with node; stop closes its stdin, which ends
// it, and waits.
func startJSWorker(ctx context.Context, jsDir, addr string) (stop func(), err error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("-jsworker needs node: %w", err)
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "@microsoft", "durabletask-js")); err != nil {
		return nil, fmt.Errorf("-jsworker: run `npm ci` in %s first: %w", jsDir, err)
	}
	cmd := exec.CommandContext(ctx, node, "bench.js")
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "DURABLE_GRPC="+addr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	started := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if sc.Text() == "STARTED" && !ok {
				ok = true
				started <- true
			}
		}
		if !ok {
			started <- false
		}
	}()
	stop = func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	select {
	case ok := <-started:
		if !ok {
			stop()
			return nil, errors.New("bench.js exited before it started")
		}
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	}
	return stop, nil
}

// warmUp runs one instance, retrying its start until the worker's stream
// has announced HelloCities.
func warmUp(ctx context.Context, c *durable.Client) error {
	for {
		id, err := c.Start(ctx, "HelloCities", nil)
		if errors.Is(err, durable.ErrOrchestratorNotRegistered) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
				continue
			}
		}
		if err != nil {
			return err
		}
		st, err := c.WaitForCompletion(ctx, id)
		if err != nil {
			return err
		}
		return checkHello(st.Output)
	}
}
