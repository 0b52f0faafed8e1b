// Command bench is durable's benchmark harness: it runs the workloads of
// WORKLOADS.md (W1–W6) against the public API of durable, verifies every
// result it times, measures the disk's fsync latency in the same run, and,
// with -peer, runs W1–W3 on go-workflows (bench/peer) and on DBOS
// (bench/peerdbos), each a separate module, in the same run and prints
// durable/peer ratios. With -cluster N it also runs
// W1 on a cluster of N runtimes in this process, next to the single-node row.
// -w chaos is the chaos driver (chaos.go; with -cluster N, on N member
// processes: chaos_cluster.go).
//
//	go run ./bench -w W1,W3 -n 500 -mode sync -peer -json out.jsonl
//	go run ./bench -w W1 -cluster 3
//	go run ./bench -w chaos -cluster 3 -kills 10
//
// See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// Options are the parsed command-line flags.
type Options struct {
	Workloads   []string
	All         bool // -w all: skip the workloads that cannot run yet
	N           int
	Concurrency int
	Rate        float64
	Partitions  int
	Mode        string
	Dir         string
	JSON        string
	Peer        bool
	// Peers are the peer programs -peer runs (-peers), PeerDir and
	// PeerDBOSDir their modules; PeerPG is a PostgreSQL URL for DBOS.
	Peers       []string
	PeerDir     string
	PeerDBOSDir string
	PeerPG      string
	FanOut      int
	Entities    int
	Idle        time.Duration
	Metrics     bool
	FsyncCount  int
	Timeout     time.Duration
	// Cluster: also run the cluster-capable workloads (W1) on a cluster of
	// this many runtimes in this process, after their single-node run.
	Cluster int
	// JSWorker: also run W1 with its code in a JavaScript worker over the
	// gRPC sidecar (bench.js in JSWorkerDir), after the Go W1 row.
	JSWorker    bool
	JSWorkerDir string
	CPUProfile  string
	// TimedProfile: write a CPU profile of each timed phase only (the
	// first to this path, the next ones to path.2, path.3, ...).
	TimedProfile string
	MemProfile   string
}

func main() {
	switch os.Getenv(childEnv) {
	case "W4":
		os.Exit(childMain())
	case "chaos":
		os.Exit(chaosChildMain())
	case chaosMemberEnv:
		os.Exit(chaosMemberMain())
	}
	if chaosArgs(os.Args[1:]) {
		os.Exit(chaosMain(os.Args[1:]))
	}
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if opts.CPUProfile != "" {
		f, err := os.Create(opts.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: cpu profile:", err)
			os.Exit(2)
		}
	}
	timedProfile.path = opts.TimedProfile
	results, err := run(opts)
	if opts.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if opts.MemProfile != "" {
		if f, ferr := os.Create(opts.MemProfile); ferr == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	for _, r := range results {
		if !r.Verified {
			os.Exit(1)
		}
	}
}

func parseFlags(args []string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	w := fs.String("w", "all", "workloads: a comma list of W1..W6, or all")
	fs.IntVar(&o.N, "n", 0, "size: instances for W1, W2, W4, W5; steps for W3; signals for W6 (0: the workload's default from WORKLOADS.md)")
	fs.IntVar(&o.Concurrency, "c", 0, "workers: instances in flight at once for W1 and W2 (0: all n at once); concurrent starts, then raises, for W5 and concurrent signals for W6 (0: 256)")
	fs.Float64Var(&o.Rate, "rate", 0, "W1: start instances at this steady rate per second (open loop; latency counted from each instance's scheduled start) instead of -c workers (0: off)")
	fs.IntVar(&o.Partitions, "partitions", 0, "partitions of each new hub (0: durable's default)")
	fs.StringVar(&o.Mode, "mode", "sync", "durability: sync (every commit survives a power cut) or nosync (durable.Options.NoSync)")
	fs.StringVar(&o.Dir, "dir", "", "data directory (default: a temporary directory, removed after)")
	fs.StringVar(&o.JSON, "json", "", "append one JSON object per workload run to this file")
	fs.BoolVar(&o.Peer, "peer", false, "also run W1-W3 on the -peers (go-workflows: sqlite on disk, and in memory; DBOS: sqlite on disk, and PostgreSQL with -peer-pg) in the same run")
	peers := fs.String("peers", peerGoWorkflows+","+peerDBOS, "with -peer: comma list of the peer programs to run ("+peerGoWorkflows+", "+peerDBOS+")")
	fs.StringVar(&o.PeerDir, "peer-dir", defaultPeerDir("peer"), "directory of the go-workflows peer program's module")
	fs.StringVar(&o.PeerDBOSDir, "peer-dbos-dir", defaultPeerDir("peerdbos"), "directory of the DBOS peer program's module")
	fs.StringVar(&o.PeerPG, "peer-pg", "", "with -peer: also run DBOS on this PostgreSQL (each run in a fresh schema, dropped after; bench/peerdbos/pg.sh starts one)")
	fs.IntVar(&o.FanOut, "fanout", 0, "W2: activities per instance (0: 1000, as in WORKLOADS.md)")
	fs.IntVar(&o.Entities, "entities", 0, "W6: Counter entities the signals are spread over (0: 1000, as in WORKLOADS.md)")
	fs.DurationVar(&o.Idle, "idle", 0, "W5: idle timeout of the instances (durable.Options.IdleTimeout), after which waiting instances passivate (0: 1s)")
	fs.IntVar(&o.Cluster, "cluster", 0, "W1: also run W1 on a cluster of this many durable runtimes in this process (loopback ports, one shared hub directory), next to the single-node row (0: off)")
	fs.BoolVar(&o.Metrics, "metrics", false, "observe the runtimes with Prometheus metrics (package metrics, as durable serve does) to measure their cost")
	fs.BoolVar(&o.JSWorker, "jsworker", false, "W1: also run W1 with its orchestrator and activity in the @microsoft/durabletask-js worker (node) over the gRPC sidecar on loopback, next to the Go row")
	fs.StringVar(&o.JSWorkerDir, "jsworker-dir", defaultJSWorkerDir(), "directory of bench.js and its node_modules (npm ci there)")
	fs.IntVar(&o.FsyncCount, "fsyncs", 300, "4 KiB writes + fsync to time the disk")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "give up on a workload after this long")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	fs.StringVar(&o.TimedProfile, "cpuprofile-timed", "", "write a CPU profile of each timed phase only (not setup or verification) to this file; later phases go to FILE.2, FILE.3, ...")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write an allocation profile at the end of the run to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.CPUProfile != "" && o.TimedProfile != "" {
		return o, errors.New("-cpuprofile and -cpuprofile-timed exclude each other (one CPU profile at a time)")
	}
	if o.Mode != "sync" && o.Mode != "nosync" {
		return o, fmt.Errorf("-mode %q: want sync or nosync", o.Mode)
	}
	var err error
	if o.Peers, err = parsePeers(*peers); err != nil {
		return o, err
	}
	if o.PeerPG != "" && (!o.Peer || !slices.Contains(o.Peers, peerDBOS)) {
		return o, errors.New("-peer-pg needs -peer with dbos among -peers")
	}
	if o.N < 0 || o.Concurrency < 0 || o.Rate < 0 || o.Partitions < 0 || o.FanOut < 0 || o.Entities < 0 || o.Idle < 0 || o.Cluster < 0 {
		return o, errors.New("-n, -c, -rate, -partitions, -fanout, -entities, -idle and -cluster must not be negative")
	}
	for _, id := range strings.Split(*w, ",") {
		id = strings.ToUpper(strings.TrimSpace(id))
		switch {
		case id == "":
		case id == "ALL":
			o.All = true
			for _, wl := range workloads {
				o.Workloads = append(o.Workloads, wl.ID)
			}
		case workloadByID(id) == nil:
			return o, fmt.Errorf("-w: unknown workload %q (want W1..W6 or all)", id)
		default:
			o.Workloads = append(o.Workloads, id)
		}
	}
	if len(o.Workloads) == 0 {
		return o, errors.New("-w: no workload")
	}
	if o.Cluster > 0 && !slices.ContainsFunc(o.Workloads, func(id string) bool { return workloadByID(id).ClusterCapable }) {
		return o, fmt.Errorf("-cluster %d: none of %v runs on a cluster (W1 does)", o.Cluster, o.Workloads)
	}
	return o, nil
}

// runOnCluster runs w on a cluster of opts.Cluster runtimes in this process
// and compares its throughput with single, the single-node row of the same
// run.
func runOnCluster(w *Workload, cfg Config, opts Options, single *Result) *Result {
	cfg.Cluster = opts.Cluster
	fmt.Fprintf(os.Stderr, "running %s (%s) on a durable cluster of %d in this process, %s...\n", w.ID, w.Name, cfg.Cluster, cfg.mode())
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	r := w.Run(ctx, w, cfg)
	r.Machine = single.Machine
	if r.Verified && single.Verified && r.PerSecond > 0 && single.PerSecond > 0 {
		r.SingleNodeRatio = round(r.PerSecond/single.PerSecond, 2)
	}
	return r
}

// defaultPeerDir is bench/<name> next to this source file.
func defaultPeerDir(name string) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("bench", name)
	}
	return filepath.Join(filepath.Dir(file), name)
}

func warnLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// run runs the workloads of opts, each on durable and then (with -peer) on
// the peer, prints the table and writes the JSON.
func run(opts Options) ([]*Result, error) {
	// "all" skips the workloads that cannot run yet; naming one is an error.
	explicit := !opts.All
	for _, id := range opts.Workloads {
		if w := workloadByID(id); w.Run == nil && explicit {
			return nil, fmt.Errorf("%s (%s): %w: %s", w.ID, w.Name, errNotImplemented, w.NotYet)
		}
	}
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "durable-bench-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	machine := newMachine()
	p50, p99, err := measureFsync(dir, opts.FsyncCount)
	if err != nil {
		return nil, fmt.Errorf("measure fsync in %s: %w", dir, err)
	}
	machine.FsyncP50Ms, machine.FsyncP99Ms = round(p50, 4), round(p99, 4)
	machine.FsyncDir, machine.FsyncCount = dir, opts.FsyncCount
	printMachine(os.Stdout, machine)

	cfg := Config{
		N: opts.N, Concurrency: opts.Concurrency, Rate: opts.Rate, Partitions: opts.Partitions,
		NoSync: opts.Mode == "nosync", FanOut: opts.FanOut, Entities: opts.Entities, W5Idle: opts.Idle, Dir: dir,
		Timeout: opts.Timeout, Logger: warnLogger(), FsyncMs: machine.FsyncP50Ms, Metrics: opts.Metrics,
	}
	var peers []*peerRunner
	if opts.Peer {
		if peers, err = buildPeers(opts, dir); err != nil {
			return nil, err
		}
	}
	var results []*Result
	var notYet []string
	for _, id := range opts.Workloads {
		w := workloadByID(id)
		if w.Run == nil {
			notYet = append(notYet, fmt.Sprintf("%s (%s): %v: %s", w.ID, w.Name, errNotImplemented, w.NotYet))
			continue
		}
		fmt.Fprintf(os.Stderr, "running %s (%s) on durable, %s...\n", w.ID, w.Name, cfg.mode())
		ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
		r := w.Run(ctx, w, cfg)
		cancel()
		r.Machine = machine
		results = append(results, r)
		if opts.Cluster > 0 && w.ClusterCapable {
			results = append(results, runOnCluster(w, cfg, opts, r))
		}
		if opts.JSWorker && w.ID == "W1" {
			fmt.Fprintf(os.Stderr, "running %s (%s) on durable with a JavaScript worker over gRPC, %s...\n", w.ID, w.Name, cfg.mode())
			jctx, jcancel := context.WithTimeout(context.Background(), opts.Timeout)
			jr := runW1JS(jctx, w, cfg, opts.JSWorkerDir, r)
			jcancel()
			jr.Machine = machine
			results = append(results, jr)
		}
		for _, peer := range peers {
			if !w.PeerCapable {
				break
			}
			fmt.Fprintf(os.Stderr, "running %s (%s) on %s, %s...\n", w.ID, w.Name, peer.name, cfg.mode())
			prs, err := peer.run(w.ID, opts, dir)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: peer %s %s: %v\n", peer.name, w.ID, err)
			}
			for _, pr := range prs {
				pr.Machine = machine
				pr.FsyncMs = machine.FsyncP50Ms
				if pr.PerSecond > 0 && r.PerSecond > 0 && pr.Verified && r.Verified && pr.Mode == r.Mode {
					if r.PeerRatios == nil {
						r.PeerRatios = map[string]float64{}
					}
					r.PeerRatios[pr.System] = round(r.PerSecond/pr.PerSecond, 2)
				}
				results = append(results, pr)
			}
		}
	}
	fmt.Println()
	printTable(os.Stdout, results)
	for _, s := range notYet {
		fmt.Println("skipped:", s)
	}
	if len(peers) > 0 {
		fmt.Println("notes: \"xR vs S\" = durable's per-second figure / S's, same workload and mode, same run; go-workflows/memory keeps nothing on disk; dbos/* use DBOS's defaults except SQLite's synchronous (see bench/README.md).")
	}
	if opts.JSON != "" {
		if err := writeJSON(opts.JSON, results); err != nil {
			return results, fmt.Errorf("write %s: %w", opts.JSON, err)
		}
	}
	return results, nil
}
