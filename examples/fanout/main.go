// Command fanout shows the fan-out/fan-in pattern of Durable Functions: an
// orchestrator starts N activities at once (CallActivity in a loop, without
// awaiting), waits for all of them with WhenAll, then aggregates their
// results. Each Square activity sleeps a random time up to -max-delay to
// stand for real work; since they run in parallel, the instance takes about
// the longest of them, not their sum. Each result is recorded in history as
// it arrives, so after a crash only the unfinished activities run again.
//
//	go run ./examples/fanout                      # data in ./fanout-data
//	go run ./examples/fanout -data DIR -n 50 -max-delay 200ms
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// Input is the input of FanOut.
type Input struct {
	N        int           `json:"n"`        // how many activities to fan out
	MaxDelay time.Duration `json:"maxDelay"` // the longest an activity sleeps
}

// WorkItem is the input of one Square activity.
type WorkItem struct {
	Index    int           `json:"index"`
	MaxDelay time.Duration `json:"maxDelay"`
}

// WorkResult is the output of one Square activity.
type WorkResult struct {
	Index  int           `json:"index"`
	Square int           `json:"square"`
	Took   time.Duration `json:"took"`
}

// Result is the output of FanOut.
type Result struct {
	N    int           `json:"n"`
	Sum  int           `json:"sum"`  // the sum of the squares of 1..N
	Work time.Duration `json:"work"` // the activities' time, summed
}

// FanOut squares 1..N in parallel and sums the squares.
func FanOut(ctx *orchestration.Context) (any, error) {
	var in Input
	if err := ctx.Input(&in); err != nil {
		return nil, err
	}
	if in.N < 1 {
		return nil, fmt.Errorf("n must be at least 1, got %d", in.N)
	}
	// Fan out: schedule every activity before awaiting any.
	tasks := make([]orchestration.Task, in.N)
	for i := range tasks {
		tasks[i] = ctx.CallActivity("Square", WorkItem{Index: i + 1, MaxDelay: in.MaxDelay})
	}
	// Fan in: wait for all, then read each task's result.
	if err := ctx.WhenAll(tasks...).Await(nil); err != nil {
		return nil, err
	}
	res := Result{N: in.N}
	for _, task := range tasks {
		r, err := orchestration.Await[WorkResult](task)
		if err != nil {
			return nil, err
		}
		res.Sum += r.Square
		res.Work += r.Took
	}
	return res, nil
}

// Square squares item.Index after sleeping a random time up to
// item.MaxDelay.
func Square(ctx context.Context, item WorkItem) (WorkResult, error) {
	start := time.Now()
	if item.MaxDelay > 0 {
		select {
		case <-time.After(rand.N(item.MaxDelay)):
		case <-ctx.Done():
			return WorkResult{}, ctx.Err()
		}
	}
	return WorkResult{Index: item.Index, Square: item.Index * item.Index, Took: time.Since(start)}, nil
}

// Register registers the orchestrator "FanOut" and the activity "Square".
func Register(rt *durable.Runtime) error {
	if err := rt.RegisterOrchestrator("FanOut", FanOut); err != nil {
		return err
	}
	return rt.RegisterActivity("Square", Square)
}

func main() {
	dir := flag.String("data", "fanout-data", "directory of the task hub (created if missing)")
	n := flag.Int("n", 20, "how many activities to fan out")
	maxDelay := flag.Duration("max-delay", 500*time.Millisecond, "the longest one activity sleeps")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(durable.Options{Dir: *dir, Logger: logger}, Input{N: *n, MaxDelay: *maxDelay}, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

// run opens a runtime with opts, runs one fan-out with in and prints what
// happened to out.
func run(opts durable.Options, in Input, out io.Writer) error {
	rt, err := durable.Open(opts)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := Register(rt); err != nil {
		return err
	}
	if err := rt.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := rt.Client()

	start := time.Now()
	id, err := client.Start(ctx, "FanOut", in)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "started instance %s: square 1..%d in parallel (each activity sleeps up to %v)\n", id, in.N, in.MaxDelay)
	st, err := client.WaitForCompletion(ctx, id)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintln(out, "status:", st.RuntimeStatus)
	if st.Failure != nil {
		return fmt.Errorf("instance %s failed: %s", id, st.Failure.Error())
	}
	var res Result
	if err := st.DecodeOutput(&res); err != nil {
		return err
	}
	fmt.Fprintf(out, "sum of squares 1..%d = %d (n(n+1)(2n+1)/6 = %d)\n", res.N, res.Sum, res.N*(res.N+1)*(2*res.N+1)/6)
	fmt.Fprintf(out, "activities worked %v in total; the instance took %v end to end\n",
		res.Work.Round(time.Millisecond), elapsed.Round(time.Millisecond))
	return nil
}
