package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
	_ "github.com/dbos-inc/dbos-transact-golang/dbos/driver/sqlite" // registers SQLite support with DBOS
	"github.com/jackc/pgx/v5/pgxpool"
)

// --- workflows and steps -------------------------------------------------------

var (
	cities    = []string{"Tokyo", "Seattle", "London"}
	helloWant = []string{"Hello Tokyo!", "Hello Seattle!", "Hello London!"}
)

// HelloCities is W1: three Hello steps in sequence.
func HelloCities(ctx dbos.Context, _ string) ([]string, error) {
	out := make([]string, 0, len(cities))
	for _, city := range cities {
		s, err := dbos.RunAsStep(ctx, func(context.Context) (string, error) { return Hello(city), nil }, dbos.WithStepName("Hello"))
		if err != nil {
			return nil, fmt.Errorf("step Hello(%s): %w", city, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Hello is W1's activity.
func Hello(city string) string { return "Hello " + city + "!" }

// FanOut is W2: it starts Double(i) for i in 0..n-1 as parallel steps
// (dbos.Go, DBOS's way to run steps concurrently inside a workflow), then
// receives every outcome and returns the sum, or the first error once all
// have finished.
func FanOut(ctx dbos.Context, n int) (int, error) {
	outcomes := make([]<-chan dbos.StepOutcome[int], n)
	for i := range outcomes {
		ch, err := dbos.Go(ctx, func(context.Context) (int, error) { return Double(i), nil }, dbos.WithStepName("Double"))
		if err != nil {
			return 0, fmt.Errorf("start step Double(%d): %w", i, err)
		}
		outcomes[i] = ch
	}
	sum := 0
	var first error
	for i, ch := range outcomes {
		o := <-ch
		if o.Err != nil {
			if first == nil {
				first = fmt.Errorf("step Double(%d): %w", i, o.Err)
			}
			continue
		}
		sum += o.Result
	}
	return sum, first
}

// Double is W2's activity.
func Double(i int) int { return 2 * i }

// Chain is W3: Step(i) for i in 0..n-1 in sequence, each result checked.
func Chain(ctx dbos.Context, n int) (int, error) {
	for i := range n {
		got, err := dbos.RunAsStep(ctx, func(context.Context) (int, error) { return Step(i), nil }, dbos.WithStepName("Step"))
		if err != nil {
			return 0, fmt.Errorf("step %d: %w", i, err)
		}
		if got != i {
			return 0, fmt.Errorf("step %d returned %d", i, got)
		}
	}
	return n, nil
}

// stepStamps[i] is when Step(i) last started (W3's per-step latencies).
var stepStamps []atomic.Int64

// Step is W3's no-op activity; it records when it ran.
func Step(i int) int {
	if i >= 0 && i < len(stepStamps) {
		stepStamps[i].Store(time.Now().UnixNano())
	}
	return i
}

// --- system databases -----------------------------------------------------------

// system is one opened DBOS system database, before NewContext.
type system struct {
	config     dbos.Config
	durability string
	note       string
	close      func() error // after Shutdown: closes what open made
}

// sqlitePragmas are the per-connection settings DBOS v1.8.0 gives a sqlite:
// URL (internal/sysdb OpenSQLitePool), synchronous aside.
const sqlitePragmas = "_txlock=immediate&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)&_pragma=journal_mode(WAL)"

func openSystem(ctx context.Context, kind, workload string, cfg config, dir string) (*system, error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	base := dbos.Config{AppName: "durable-bench", Logger: logger}
	path := filepath.Join(dir, "dbos.sqlite")
	switch kind {
	case "sqlite":
		syncMode, durability := "FULL", "power cut (SQLite WAL, synchronous=FULL)"
		if cfg.mode == "nosync" {
			syncMode, durability = "OFF", "process crash (SQLite WAL, synchronous=OFF)"
		}
		db, err := sql.Open("sqlite", path+"?"+sqlitePragmas+"&_pragma=synchronous("+syncMode+")")
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(4)
		db.SetConnMaxLifetime(time.Hour)
		if err := checkSQLite(ctx, db, syncMode); err != nil {
			db.Close()
			return nil, err
		}
		base.SQLiteSystemDB = db
		return &system{config: base, durability: durability, close: db.Close,
			note: "own *sql.DB with DBOS's SQLite settings but synchronous=" + syncMode + " (DBOS's default: NORMAL)"}, nil
	case "sqlite-default":
		base.DatabaseURL = "sqlite:" + path
		return &system{config: base, close: func() error { return nil },
			durability: "process crash (SQLite WAL, synchronous=NORMAL: DBOS's default; a power cut can lose commits)",
			note:       "DBOS's default SQLite settings (synchronous=NORMAL whatever -mode says)"}, nil
	case "postgres":
		return openPostgres(ctx, workload, cfg, base)
	}
	return nil, fmt.Errorf("unknown backend %q", kind)
}

// checkSQLite reads back the settings that decide durability from a pooled
// connection, so a driver that ignored the DSN cannot pass unnoticed.
func checkSQLite(ctx context.Context, db *sql.DB, syncMode string) error {
	var journal string
	var synchronous int
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journal); err != nil {
		return fmt.Errorf("read sqlite journal_mode: %w", err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&synchronous); err != nil {
		return fmt.Errorf("read sqlite synchronous: %w", err)
	}
	want := map[string]int{"OFF": 0, "NORMAL": 1, "FULL": 2}[syncMode]
	if journal != "wal" || synchronous != want {
		return fmt.Errorf("sqlite journal_mode=%s synchronous=%d, want wal and %d (%s)", journal, synchronous, want, syncMode)
	}
	return nil
}

// openPostgres gives the run a schema of its own (DBOS creates and migrates
// it at launch; it is dropped at close), so every run starts empty.
func openPostgres(ctx context.Context, workload string, cfg config, base dbos.Config) (*system, error) {
	u, err := url.Parse(cfg.pgURL)
	if err != nil {
		return nil, fmt.Errorf("-pg %q: %w", cfg.pgURL, err)
	}
	base.DatabaseSchema = "dbos_bench_" + strings.ToLower(workload) + "_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	durability := "power cut (PostgreSQL, fsync and synchronous_commit on)"
	if cfg.mode == "nosync" {
		q := u.Query()
		q.Set("synchronous_commit", "off") // a pgx runtime parameter: SET for every connection
		u.RawQuery = q.Encode()
		durability = "process crash (PostgreSQL, synchronous_commit=off)"
	}
	base.DatabaseURL = u.String()
	schema := base.DatabaseSchema
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pool, err := pgxpool.New(ctx, cfg.pgURL)
		if err != nil {
			return fmt.Errorf("connect to drop schema %s: %w", schema, err)
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	return &system{config: base, durability: durability, close: drop, note: "a fresh schema per run, dropped after"}, nil
}

// --- workloads -----------------------------------------------------------------

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// spec is one workload's shape: how many instances, and how to start and
// check one.
type spec struct {
	instances, conc int
	count           int // what per_second counts
	start           func(ctx dbos.Context) (func() error, error)
}

func runWorkload(id, kind string, cfg config) *Result {
	r := &Result{Workload: id, System: "dbos/" + kind, Mode: cfg.mode, At: time.Now().UTC().Format(time.RFC3339)}
	timeout := dbos.WithHandleTimeout(cfg.timeout)
	var s spec
	switch id {
	case "W1":
		n := orDefault(cfg.n, 2000)
		s = spec{instances: n, conc: orDefault(cfg.conc, n), count: n}
		r.N, r.Unit, r.LatencyOf, r.Activities = n, "instances/s", "start-to-completion per instance", 3*n
		s.start = func(ctx dbos.Context) (func() error, error) {
			h, err := dbos.RunWorkflow(ctx, HelloCities, "")
			if err != nil {
				return nil, err
			}
			return func() error {
				out, err := h.GetResult(timeout)
				if err != nil {
					return err
				}
				if !slices.Equal(out, helloWant) {
					return fmt.Errorf("output %q, want %q", out, helloWant)
				}
				return nil
			}, nil
		}
	case "W2":
		n, fan := orDefault(cfg.n, 20), orDefault(cfg.fanOut, 1000)
		s = spec{instances: n, conc: orDefault(cfg.conc, n), count: n * fan}
		r.N, r.Unit, r.LatencyOf, r.Activities = n, "activities/s", "start-to-completion per instance", n*fan
		if fan != 1000 {
			r.Note = fmt.Sprintf("fan-out %d per instance (WORKLOADS.md: 1000)", fan)
		}
		s.start = startInt(FanOut, fan, fan*(fan-1), timeout)
	case "W3":
		n := orDefault(cfg.n, 5000)
		s = spec{instances: 1, conc: 1, count: n}
		r.N, r.Unit, r.LatencyOf, r.Activities = n, "steps/s", "gap between consecutive activity executions (one step)", n
		stepStamps = make([]atomic.Int64, n)
		s.start = startInt(Chain, n, n, timeout)
	}
	if id != "W3" {
		r.Concurrency = s.conc
	}
	if err := run(r, id, kind, cfg, s); err != nil {
		r.Verified = false
		r.Error = err.Error()
	}
	return r
}

func startInt(wf dbos.Workflow[int, int], input, want int, timeout dbos.GetResultOption) func(ctx dbos.Context) (func() error, error) {
	return func(ctx dbos.Context) (func() error, error) {
		h, err := dbos.RunWorkflow(ctx, wf, input)
		if err != nil {
			return nil, err
		}
		return func() error {
			got, err := h.GetResult(timeout)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("output %d, want %d", got, want)
			}
			return nil
		}, nil
	}
}

// run opens a fresh system database, launches DBOS on it, runs s with
// s.conc workers (each starts an instance, waits for its result, checks it,
// then starts the next) and fills r's figures.
func run(r *Result, id, kind string, cfg config, s spec) error {
	dir, err := os.MkdirTemp(cfg.dir, "peerdbos-"+id+"-"+kind+"-*")
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	sys, err := openSystem(ctx, kind, id, cfg, dir)
	if err != nil {
		return err
	}
	r.Durability = sys.durability
	r.Note = strings.TrimPrefix(r.Note+"; "+sys.note, "; ")
	dctx, err := dbos.NewContext(ctx, sys.config)
	if err != nil {
		sys.close()
		return fmt.Errorf("dbos.NewContext: %w", err)
	}
	defer func() {
		if err := dbos.Shutdown(dctx, 10*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "peerdbos: shutdown:", err)
		}
		if err := sys.close(); err != nil {
			fmt.Fprintln(os.Stderr, "peerdbos:", err)
		}
	}()
	dbos.RegisterWorkflow(dctx, HelloCities)
	dbos.RegisterWorkflow(dctx, FanOut)
	dbos.RegisterWorkflow(dctx, Chain)
	if err := dbos.Launch(dctx); err != nil {
		return fmt.Errorf("dbos.Launch: %w", err)
	}

	lat := make([]time.Duration, s.instances)
	var (
		next atomic.Int64
		bad  failures
		wg   sync.WaitGroup
	)
	t0 := time.Now()
	for range s.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= s.instances {
					return
				}
				start := time.Now()
				wait, err := s.start(dctx)
				if err != nil {
					bad.add(fmt.Errorf("RunWorkflow: %w", err))
					continue
				}
				err = wait()
				lat[i] = time.Since(start)
				if err != nil {
					bad.add(fmt.Errorf("instance %d: %w", i, err))
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	r.WallMs = round(ms(wall), 1)
	r.PerSecond = round(float64(s.count)/wall.Seconds(), 1)
	if id == "W3" {
		lat = stepGaps(stepStamps)
		r.TimePerStepMs = round(ms(wall)/float64(s.count), 4)
	}
	r.P50Ms, r.P99Ms = round(percentileMs(lat, 50), 3), round(percentileMs(lat, 99), 3)
	r.Wrong = int(bad.count.Load())
	r.Verified = r.Wrong == 0
	if bad.first != nil {
		r.Verified = false
		r.Error = bad.first.Error()
	}
	return nil
}
