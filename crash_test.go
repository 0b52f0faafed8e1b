package durable_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

// The crash test runs hello-cities in a child process (this test binary,
// re-executed), kills it with SIGKILL part-way, and checks that a new runtime
// on the same directory finishes every instance whose start was acknowledged
// with the right output.

const (
	crashDirEnv    = "DURABLE_CRASH_DIR"
	crashInstances = 200
)

// loggingHello greets like hello and appends "<instance> <city>" to the
// executions log first, one write per line, so the log survives a SIGKILL.
func loggingHello(log *os.File) func(ctx context.Context, city string) (string, error) {
	var mu sync.Mutex
	return func(ctx context.Context, city string) (string, error) {
		info, _ := durableActivityInfo(ctx)
		mu.Lock()
		_, err := log.WriteString(info + " " + city + "\n")
		mu.Unlock()
		if err != nil {
			return "", err
		}
		time.Sleep(3 * time.Millisecond) // keep instances in flight long enough to be killed mid-way
		return "Hello " + city + "!", nil
	}
}

func openExecLog(t testing.TB, dir string) *os.File {
	f, err := os.OpenFile(filepath.Join(dir, "executions.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCrashChild is the child process's body; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashedProcessRecoversEveryAcknowledgedInstance")
	}
	execLog := openExecLog(t, dir)
	rt := open(t, durable.Options{Dir: filepath.Join(dir, "hub"), MaxConcurrentActivities: 16}, func(rt *durable.Runtime) {
		must(rt.RegisterOrchestrator("HelloCities", helloCities))
		must(rt.RegisterActivity("Hello", loggingHello(execLog)))
	})
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	ids := make(chan string)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if _, err := rt.Client().Start(context.Background(), "HelloCities", nil, durable.WithInstanceID(id)); err != nil {
					fmt.Fprintln(os.Stderr, "start:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintln(out, "started", id)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < crashInstances; i++ {
		ids <- fmt.Sprintf("crash-%03d", i)
	}
	close(ids)
	wg.Wait()
	for i := 0; i < crashInstances; i++ {
		if _, err := rt.Client().WaitForCompletion(context.Background(), fmt.Sprintf("crash-%03d", i)); err != nil {
			os.Exit(4)
		}
	}
	mu.Lock()
	fmt.Fprintln(out, "all done")
	out.Flush()
	mu.Unlock()
	time.Sleep(time.Hour) // wait to be killed
}

func TestCrashedProcessRecoversEveryAcknowledgedInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes")
	}
	// Kill moments: after the first start is acknowledged, in the middle of
	// the starts, right after the last start, and a little later while the
	// activities are running.
	moments := []struct {
		name       string
		afterStart int
		extraDelay time.Duration
	}{
		{"after the first start", 1, 0},
		{"mid starts", crashInstances / 2, 0},
		{"after the last start", crashInstances, 0},
		{"while activities run", crashInstances, 30 * time.Millisecond},
		{"late in the run", crashInstances, 120 * time.Millisecond},
	}
	for _, m := range moments {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			acked := runChildAndKill(t, "TestCrashChild", crashDirEnv, dir, m.afterStart, m.extraDelay)

			execLog := openExecLog(t, dir)
			defer execLog.Close()
			restart := time.Now()
			rt := open(t, durable.Options{Dir: filepath.Join(dir, "hub")}, func(rt *durable.Runtime) {
				must(rt.RegisterOrchestrator("HelloCities", helloCities))
				must(rt.RegisterActivity("Hello", loggingHello(execLog)))
			})
			ctx := waitCtx(t)
			c := rt.Client()
			for _, id := range acked {
				st, err := c.WaitForCompletion(ctx, id)
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				if st.RuntimeStatus != durable.StatusCompleted || string(st.Output) != helloOutput {
					t.Fatalf("%s: %s %s %v", id, st.RuntimeStatus, st.Output, st.Failure)
				}
			}
			// Starts that committed but were not acknowledged before the
			// kill must finish too.
			page, err := c.List(ctx, durable.Query{PageSize: durable.MaxPageSize})
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range page.Instances {
				final, err := c.WaitForCompletion(ctx, st.InstanceID)
				if err != nil || string(final.Output) != helloOutput {
					t.Fatalf("unacknowledged %s: %v %v", st.InstanceID, final, err)
				}
			}
			if len(page.Instances) < len(acked) {
				t.Fatalf("%d instances listed, %d acknowledged", len(page.Instances), len(acked))
			}
			total, distinct := countExecutions(t, dir)
			t.Logf("killed after %d acknowledged starts (+%v); %d instances completed %v after restart; %d activity executions, %d ran more than once",
				len(acked), m.extraDelay, len(page.Instances), time.Since(restart).Round(time.Millisecond), total, total-distinct)
			if distinct != 3*len(page.Instances) {
				t.Fatalf("%d distinct activity executions for %d instances", distinct, len(page.Instances))
			}
		})
	}
}

func countExecutions(t *testing.T, dir string) (total, distinct int) {
	b, err := os.ReadFile(filepath.Join(dir, "executions.log"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		total++
		seen[line] = true
	}
	return total, len(seen)
}
