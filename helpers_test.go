package durable_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durable-go/durable/orchestration"
)

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func durableActivityInfo(ctx context.Context) (string, bool) {
	info, ok := orchestration.ActivityInfoFrom(ctx)
	return info.InstanceID, ok
}

// runChildAndKill runs the test childTest of this binary as a child process
// with envKey=dir, waits until it has printed afterStarts "started X"
// lines, waits delay more, kills it with SIGKILL, and returns every X it
// printed (those printed before the kill took effect included).
func runChildAndKill(t *testing.T, childTest, envKey, dir string, afterStarts int, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+childTest+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), envKey+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var started []string
	lines := bufio.NewScanner(stdout)
	scan := func(until int) {
		for (until < 0 || len(started) < until) && lines.Scan() {
			if x, ok := strings.CutPrefix(lines.Text(), "started "); ok {
				started = append(started, x)
			}
		}
	}
	scan(afterStarts)
	time.Sleep(delay)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	scan(-1)
	_ = cmd.Wait()
	if len(started) < afterStarts {
		t.Fatalf("child %s printed only %d of %d starts", childTest, len(started), afterStarts)
	}
	return started
}
