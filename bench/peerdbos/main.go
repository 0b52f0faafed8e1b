// Command peerdbos runs workloads W1–W3 of WORKLOADS.md on DBOS Transact Go
// (github.com/dbos-inc/dbos-transact-golang v1.8.0), on SQLite in a file and,
// with -pg URL, on PostgreSQL, and prints the same JSON objects as durable's
// harness (bench/), which runs this program with -peer so that durable,
// go-workflows (bench/peer) and DBOS are measured in the same run.
//
// It is a separate Go module so that durable's module never depends on DBOS.
//
// DBOS is used as its documentation shows: functions registered with
// RegisterWorkflow before Launch, activities as steps (RunAsStep; W2's
// parallel steps with Go), instances started with RunWorkflow and awaited
// with the handle's GetResult, every other setting left at its default.
// What differs from the defaults, and why:
//   - dbos/sqlite opens its own *sql.DB (Config.SQLiteSystemDB) with the
//     settings DBOS v1.8.0 applies to a sqlite: URL (WAL, busy_timeout 5000,
//     foreign keys, BEGIN IMMEDIATE, at most 8 connections, 4 idle) except
//     synchronous: FULL in sync mode (every commit fsyncs the WAL, so it
//     survives a power cut, as durable's sync mode), OFF in nosync mode.
//     DBOS's own default is NORMAL, which in WAL mode syncs only at
//     checkpoints (a power cut can lose acknowledged commits); and a
//     synchronous pragma in the URL is not enough, because DBOS then runs
//     "PRAGMA synchronous = NORMAL" on one pooled connection.
//     dbos/sqlite-default (-backends sqlite-default) is DBOS's default
//     exactly (a sqlite: URL, synchronous=NORMAL), for reference;
//   - dbos/postgres uses the server's settings (fsync and
//     synchronous_commit on, the defaults) in sync mode, and the
//     session parameter synchronous_commit=off in nosync mode;
//   - the logger writes warnings to stderr (DBOS's default logs every
//     launch at info level to stdout).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// Result is the same JSON object as durable's harness prints (a subset of
// its fields).
type Result struct {
	Workload      string  `json:"workload"`
	System        string  `json:"system"`
	Mode          string  `json:"mode"`
	Durability    string  `json:"durability"`
	N             int     `json:"n"`
	Concurrency   int     `json:"concurrency,omitempty"`
	PerSecond     float64 `json:"per_second"`
	Unit          string  `json:"unit"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	LatencyOf     string  `json:"latency_of"`
	WallMs        float64 `json:"wall_ms"`
	Verified      bool    `json:"verified"`
	Wrong         int     `json:"wrong"`
	Error         string  `json:"error,omitempty"`
	Note          string  `json:"note,omitempty"`
	Activities    int     `json:"activities,omitempty"`
	TimePerStepMs float64 `json:"time_per_step_ms,omitempty"`
	At            string  `json:"at"`
}

// config is what every workload run needs from the flags.
type config struct {
	n, conc, fanOut int
	mode            string
	dir             string
	pgURL           string
	timeout         time.Duration
}

func main() {
	var (
		w        = flag.String("w", "W1,W2,W3", "workloads: a comma list of W1, W2, W3, or all")
		n        = flag.Int("n", 0, "size: instances for W1, W2; steps for W3 (0: the default of WORKLOADS.md)")
		c        = flag.Int("c", 0, "instances in flight at once for W1 and W2 (0: all n)")
		mode     = flag.String("mode", "sync", "sync (SQLite synchronous=FULL; PostgreSQL synchronous_commit on) or nosync (synchronous=OFF; synchronous_commit=off)")
		dir      = flag.String("dir", "", "data directory (default: a temporary directory, removed after)")
		jsonPath = flag.String("json", "", "append one JSON object per run to this file")
		fanOut   = flag.Int("fanout", 0, "W2: activities per instance (0: 1000)")
		backends = flag.String("backends", "", "comma list of sqlite (synchronous as -mode), sqlite-default (DBOS's own SQLite settings), postgres (needs -pg) (default: sqlite, and postgres with -pg)")
		pgURL    = flag.String("pg", "", "PostgreSQL URL for the postgres backend (each run uses a fresh schema, dropped after); see pg.sh")
		timeout  = flag.Duration("timeout", 10*time.Minute, "give up on a workload after this long")
		quiet    = flag.Bool("quiet", false, "do not print the table (the harness prints its own)")
		_        = flag.Int("partitions", 0, "ignored (durable only)")
	)
	flag.Parse()
	if *mode != "sync" && *mode != "nosync" {
		fatal(fmt.Errorf("-mode %q: want sync or nosync", *mode))
	}
	kinds, err := parseBackends(*backends, *pgURL)
	if err != nil {
		fatal(err)
	}
	ids, err := parseWorkloads(*w)
	if err != nil {
		fatal(err)
	}
	cfg := config{n: *n, conc: *c, fanOut: *fanOut, mode: *mode, dir: *dir, pgURL: *pgURL, timeout: *timeout}
	if cfg.dir == "" {
		tmp, err := os.MkdirTemp("", "peerdbos-bench-*")
		if err != nil {
			fatal(fmt.Errorf("temp dir: %w", err))
		}
		defer os.RemoveAll(tmp)
		cfg.dir = tmp
	}
	var results []*Result
	for _, id := range ids {
		for _, kind := range kinds {
			r := runWorkload(id, kind, cfg)
			results = append(results, r)
			if *jsonPath != "" {
				if err := appendJSON(*jsonPath, r); err != nil {
					fatal(fmt.Errorf("write %s: %w", *jsonPath, err))
				}
			}
		}
	}
	if !*quiet {
		printTable(os.Stdout, results)
	}
	for _, r := range results {
		if !r.Verified {
			os.Exit(1)
		}
	}
}

func parseWorkloads(list string) ([]string, error) {
	var ids []string
	for _, id := range strings.Split(list, ",") {
		id = strings.ToUpper(strings.TrimSpace(id))
		switch id {
		case "ALL":
			ids = append(ids, "W1", "W2", "W3")
		case "W1", "W2", "W3":
			ids = append(ids, id)
		case "W4", "W5", "W6":
			return nil, fmt.Errorf("%s is not implemented for DBOS", id)
		case "":
		default:
			return nil, fmt.Errorf("unknown workload %q", id)
		}
	}
	return ids, nil
}

func parseBackends(list, pgURL string) ([]string, error) {
	if list == "" {
		list = "sqlite"
		if pgURL != "" {
			list += ",postgres"
		}
	}
	var kinds []string
	for _, kind := range strings.Split(list, ",") {
		switch kind = strings.TrimSpace(kind); kind {
		case "sqlite", "sqlite-default":
		case "postgres":
			if pgURL == "" {
				return nil, errors.New("backend postgres needs -pg URL")
			}
		default:
			return nil, fmt.Errorf("unknown backend %q (want sqlite, sqlite-default, postgres)", kind)
		}
		kinds = append(kinds, kind)
	}
	return kinds, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "peerdbos:", err)
	os.Exit(2)
}

// --- figures and output ----------------------------------------------------

func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	rank = max(0, min(rank, len(s)-1))
	return ms(s[rank])
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func stepGaps(stamps []atomic.Int64) []time.Duration {
	var gaps []time.Duration
	for i := 1; i < len(stamps); i++ {
		a, b := stamps[i-1].Load(), stamps[i].Load()
		if a > 0 && b > a {
			gaps = append(gaps, time.Duration(b-a))
		}
	}
	return gaps
}

func appendJSON(path string, r *Result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printTable(w io.Writer, results []*Result) {
	fmt.Fprintf(w, "%d cores, GOMAXPROCS=%d, %s %s/%s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tsystem\tmode\tn\tper second\tunit\tp50 ms\tp99 ms\twall ms\tverified\terror")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%s\t%.2f\t%.2f\t%.0f\t%v\t%s\n",
			r.Workload, r.System, r.Mode, r.N, r.PerSecond, r.Unit, r.P50Ms, r.P99Ms, r.WallMs, r.Verified, r.Error)
	}
	tw.Flush()
}

// failures counts wrong instances and keeps the first error.
type failures struct {
	count atomic.Int64
	once  sync.Once
	first error
}

func (f *failures) add(err error) {
	f.count.Add(1)
	f.once.Do(func() { f.first = err })
}
