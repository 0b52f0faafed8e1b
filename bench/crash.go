package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

// W4 runs W1 instances in a child process (this same binary, re-executed
// with childEnv set), kills it with SIGKILL once about a third of them have
// completed, then reopens the directory in this process and times the
// recovery. Every execution of the Hello activity, in either process,
// appends "<instance> <city>\n" to an execution log with one O_APPEND
// write, which survives the SIGKILL (it is in the kernel once write
// returns), so executions beyond one per scheduling can be counted.

const (
	childEnv           = "DURABLE_BENCH_CHILD"
	childDirEnv        = "DURABLE_BENCH_CHILD_DIR"
	childLogEnv        = "DURABLE_BENCH_CHILD_LOG"
	childNEnv          = "DURABLE_BENCH_CHILD_N"
	childPartitionsEnv = "DURABLE_BENCH_CHILD_PARTITIONS"
	childNoSyncEnv     = "DURABLE_BENCH_CHILD_NOSYNC"
)

func w4InstanceID(i int) string { return fmt.Sprintf("w4-%05d", i) }

// execLog appends one line "<instance> <city> <process>" per activity
// execution; process is "child" or "restart".
type execLog struct {
	f       *os.File
	process string
}

func openExecLog(path, process string) (*execLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &execLog{f: f, process: process}, nil
}

func (l *execLog) record(instance, city string) error {
	_, err := l.f.WriteString(instance + " " + city + " " + l.process + "\n") // one write(2): atomic with O_APPEND
	return err
}

// registerW4 registers W1's functions with a Hello that logs each
// execution. In the child, Hello first waits for gate (closed once every
// instance's creation is durable), so that the kill lands part-way through
// the work rather than while instances are still being created: without it,
// most instances finish while the last ones are started. gate is nil after
// the restart.
func registerW4(log *execLog, gate <-chan struct{}) func(rt *durable.Runtime) error {
	return func(rt *durable.Runtime) error {
		return errors.Join(
			rt.RegisterOrchestrator("HelloCities", helloCities),
			rt.RegisterActivity("Hello", func(ctx context.Context, city string) (string, error) {
				if gate != nil {
					select {
					case <-gate:
					case <-ctx.Done():
						return "", ctx.Err()
					}
				}
				info, _ := orchestration.ActivityInfoFrom(ctx)
				if err := log.record(info.InstanceID, city); err != nil {
					return "", err
				}
				return "Hello " + city + "!", nil
			}))
	}
}

// childMain is the process that gets killed. It reports "started-all" once
// every instance's creation is durable, then "done <id>" as each completes.
func childMain() int {
	n, _ := strconv.Atoi(os.Getenv(childNEnv))
	partitions, _ := strconv.Atoi(os.Getenv(childPartitionsEnv))
	cfg := Config{Partitions: partitions, NoSync: os.Getenv(childNoSyncEnv) == "1", Logger: warnLogger()}
	log, err := openExecLog(os.Getenv(childLogEnv), "child")
	if err != nil {
		fmt.Fprintln(os.Stderr, "W4 child:", err)
		return 1
	}
	gate := make(chan struct{})
	rt, err := startRuntime(cfg, os.Getenv(childDirEnv), registerW4(log, gate))
	if err != nil {
		fmt.Fprintln(os.Stderr, "W4 child:", err)
		return 1
	}
	defer rt.Close()
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		out.WriteString(s + "\n")
		out.Flush()
	}
	ctx := context.Background()
	c := rt.Client()
	var started, done sync.WaitGroup
	for i := 0; i < n; i++ {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			id, err := c.Start(ctx, "HelloCities", nil, durable.WithInstanceID(w4InstanceID(i)))
			started.Done()
			if err != nil {
				say("error start: " + err.Error())
				return
			}
			st, err := c.WaitForCompletion(ctx, id)
			if err != nil {
				say("error wait: " + err.Error())
				return
			}
			if checkHello(st.Output) == nil {
				say("done " + id)
			}
		}()
	}
	started.Wait()
	close(gate)
	say("started-all")
	done.Wait()
	say("all-done")
	return 0
}

func runW4(ctx context.Context, w *Workload, cfg Config) *Result {
	n := orDefault(cfg.N, w.DefaultN)
	r := newResult(w, cfg, n)
	r.Concurrency = n
	base, err := os.MkdirTemp(cfg.Dir, "W4-*")
	if err != nil {
		return failed(r, err)
	}
	defer os.RemoveAll(base)
	hubDir, logPath := filepath.Join(base, "hub"), filepath.Join(base, "activity-executions.log")

	// Phase 1: the child runs until killed.
	doneBeforeKill, killed, err := runW4Child(ctx, cfg, n, hubDir, logPath)
	if err != nil {
		return failed(r, fmt.Errorf("child: %w", err))
	}
	r.CompletedBeforeKill = &doneBeforeKill
	if !killed {
		r.Note = "the child finished before it could be killed part-way"
	}

	// Between the phases, untimed: which results were committed at the
	// kill, read from a copy of the directory (opening the original would
	// recover and close it cleanly, sparing the timed restart its work).
	committed, inspectErr := committedAtKill(cfg, base, hubDir, n)

	// Phase 2: restart on the same directory and time recovery.
	log, err := openExecLog(logPath, "restart")
	if err != nil {
		return failed(r, err)
	}
	defer log.f.Close()
	sp := startSpan(nil)
	t0 := sp.start
	rt, err := startRuntime(cfg, hubDir, registerW4(log, nil))
	if err != nil {
		return failed(r, fmt.Errorf("reopen after kill: %w", err))
	}
	defer rt.Close()
	sp.track(rt)
	openMs := round(ms(time.Since(t0)), 1)
	r.RecoveryOpenMs = &openMs
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	c := rt.Client()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := w4InstanceID(i)
			st, err := c.WaitForCompletion(ctx, id)
			lat[i] = time.Since(t0)
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("wait for %s: %w", id, err)
			case st.RuntimeStatus != durable.StatusCompleted:
				errs[i] = fmt.Errorf("instance %s: %s %+v", id, st.RuntimeStatus, st.Failure)
			default:
				if err := checkHello(st.Output); err != nil {
					errs[i] = fmt.Errorf("instance %s: %w", id, err)
				}
			}
		}()
	}
	wg.Wait()
	sp.end()
	wrong := 0
	var firstErr error
	for _, e := range errs {
		if e != nil {
			wrong++
			firstErr = cmpErr(firstErr, e)
		}
	}
	fill(r, lat, sp, n, wrong, firstErr)

	// Count activity executions per scheduling from the log of both
	// processes. Close the runtime first so no activity still runs.
	rt.Close()
	counts, err := countExecutions(logPath)
	if err != nil {
		return failed(r, err)
	}
	schedulings, executions, dup, missing := 3*n, 0, 0, 0
	var inChild, inRestart, across, rerunCommitted int
	for i := 0; i < n; i++ {
		for _, city := range cities {
			k := w4InstanceID(i) + " " + city
			ch, re := counts[k+" child"], counts[k+" restart"]
			delete(counts, k+" child")
			delete(counts, k+" restart")
			executions += ch + re
			switch {
			case ch+re == 0:
				missing++
			case ch > 0 && re > 0:
				across += re
				inChild += ch - 1
				if committed != nil && committed[k] {
					rerunCommitted += re
				}
			default:
				inChild += max(ch-1, 0)
				inRestart += max(re-1, 0)
			}
			dup += max(ch+re-1, 0)
		}
	}
	r.DuplicatesByProcess = map[string]int{"re-run after the restart": across, "within the killed child": inChild, "within the restarted process": inRestart}
	if inspectErr != nil {
		r.Note = strings.TrimSpace(r.Note + " could not tell which results were committed at the kill: " + inspectErr.Error())
	} else {
		r.DuplicatesByProcess["re-run after the restart although committed at the kill"] = rerunCommitted
	}
	if len(counts) > 0 || missing > 0 {
		r.Verified = false
		r.Error = strings.TrimSpace(r.Error + fmt.Sprintf(" execution log: %d schedulings never executed, %d unexpected entries", missing, len(counts)))
	}
	r.ActivitySchedulings, r.ActivityExecutions, r.DuplicateActivityExecutions = &schedulings, &executions, &dup
	return r
}

func cmpErr(first, e error) error {
	if first != nil {
		return first
	}
	return e
}

// runW4Child runs the child and kills it with SIGKILL once every instance
// is started and at least a third have completed. It returns how many the
// child had reported completed at the kill.
func runW4Child(ctx context.Context, cfg Config, n int, hubDir, logPath string) (doneBeforeKill int, killed bool, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, false, err
	}
	nosync := "0"
	if cfg.NoSync {
		nosync = "1"
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(),
		childEnv+"=W4", childDirEnv+"="+hubDir, childLogEnv+"="+logPath,
		childNEnv+"="+strconv.Itoa(n), childPartitionsEnv+"="+strconv.Itoa(cfg.Partitions), childNoSyncEnv+"="+nosync)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, false, err
	}
	if err := cmd.Start(); err != nil {
		return 0, false, err
	}
	var (
		startedAll bool
		done       int
		childErr   string
	)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "started-all":
			startedAll = true
		case strings.HasPrefix(line, "done "):
			done++
		case strings.HasPrefix(line, "error "):
			if childErr == "" {
				childErr = line
			}
		}
		if startedAll && done >= n/3 {
			killed = cmd.Process.Signal(syscall.SIGKILL) == nil
			break
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()
	if childErr != "" {
		return done, killed, errors.New(childErr)
	}
	if !killed && waitErr != nil {
		return done, false, waitErr
	}
	if !startedAll {
		return done, killed, errors.New("the child ended before it had started every instance")
	}
	return done, killed, nil
}

func countExecutions(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		counts[sc.Text()]++
	}
	return counts, sc.Err()
}

// committedAtKill copies the killed child's directory (sparse-aware: Badger
// preallocates its value logs) and returns which (instance, city) activity
// results its history holds. Only the copy is opened.
func committedAtKill(cfg Config, base, hubDir string, n int) (map[string]bool, error) {
	copyDir := filepath.Join(base, "inspect")
	if out, err := exec.Command("cp", "-a", "--sparse=always", hubDir, copyDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy %s: %v: %s", hubDir, err, out)
	}
	defer os.RemoveAll(copyDir)
	rt, err := durable.Open(durable.Options{Dir: copyDir, Partitions: cfg.Partitions, NoSync: true, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	committed := map[string]bool{}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		id := w4InstanceID(i)
		events, err := rt.Client().History(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		city := map[int64]string{}
		for _, ev := range events {
			switch ev.Type {
			case history.TaskScheduled:
				var c string
				if json.Unmarshal(ev.Payload, &c) == nil {
					city[ev.TaskID] = c
				}
			case history.TaskCompleted:
				if c, ok := city[ev.TaskID]; ok {
					committed[id+" "+c] = true
				}
			}
		}
	}
	return committed, nil
}
