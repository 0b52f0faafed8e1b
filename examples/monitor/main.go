// Command monitor shows the monitor pattern of Durable Functions: a flexible,
// durable polling loop. The Monitor orchestrator checks the status of a
// (simulated) long-running job with the CheckJob activity, publishes the
// progress as its custom status, then sleeps on a durable timer and starts
// the next round with ContinueAsNew, so its history never grows beyond one
// round however long the job runs. It stops when the job is done (and calls
// the Alert activity) or when its deadline passes.
//
//	go run ./examples/monitor                       # data in ./monitor-data
//	go run ./examples/monitor -data DIR -job 3s -interval 250ms -deadline 10s
//	go run ./examples/monitor -job 1m -deadline 2s  # the deadline passes first
//
// The program submits a job, starts a monitor for it and prints the
// monitor's custom status as it changes, then its result.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// Job is a simulated long-running job: it is done Duration after StartedAt.
// A real monitor would only carry the job's id and ask an external system.
type Job struct {
	ID        string        `json:"id"`
	StartedAt time.Time     `json:"startedAt"`
	Duration  time.Duration `json:"duration"`
}

// JobStatus is what CheckJob reports.
type JobStatus struct {
	Progress int  `json:"progress"` // percent
	Done     bool `json:"done"`
}

// MonitorInput is the input of each round of Monitor.
type MonitorInput struct {
	Job      Job           `json:"job"`
	Interval time.Duration `json:"interval"` // between two checks
	Timeout  time.Duration `json:"timeout"`  // from the first round to the deadline
	// Set by the monitor itself for the next rounds.
	Deadline time.Time `json:"deadline,omitzero"`
	Round    int       `json:"round"`
}

// Progress is Monitor's custom status.
type Progress struct {
	Round    int    `json:"round"`
	Progress int    `json:"progress"`
	State    string `json:"state"`
}

// MonitorResult is Monitor's output.
type MonitorResult struct {
	JobID    string `json:"jobId"`
	Done     bool   `json:"done"`
	Progress int    `json:"progress"`
	Rounds   int    `json:"rounds"`
	Message  string `json:"message"`
}

// Monitor runs one polling round; ContinueAsNew starts the next.
func Monitor(ctx *orchestration.Context) (any, error) {
	var in MonitorInput
	if err := ctx.Input(&in); err != nil {
		return nil, err
	}
	if in.Interval <= 0 {
		return nil, fmt.Errorf("interval must be positive, got %v", in.Interval)
	}
	if in.Deadline.IsZero() {
		// The first round fixes the deadline from its (replay-safe) clock.
		in.Deadline = ctx.Now().Add(in.Timeout)
	}
	in.Round++

	status, err := orchestration.Await[JobStatus](ctx.CallActivity("CheckJob", in.Job))
	if err != nil {
		return nil, err
	}
	result := MonitorResult{JobID: in.Job.ID, Done: status.Done, Progress: status.Progress, Rounds: in.Round}
	switch {
	case status.Done:
		_ = ctx.SetCustomStatus(Progress{Round: in.Round, Progress: status.Progress, State: "done"})
		result.Message, err = orchestration.Await[string](ctx.CallActivity("Alert", fmt.Sprintf("job %s is done", in.Job.ID)))
		return result, err
	case !ctx.Now().Add(in.Interval).Before(in.Deadline):
		_ = ctx.SetCustomStatus(Progress{Round: in.Round, Progress: status.Progress, State: "gave up"})
		result.Message = fmt.Sprintf("deadline passed at %d%%", status.Progress)
		return result, nil
	}
	_ = ctx.SetCustomStatus(Progress{Round: in.Round, Progress: status.Progress, State: "waiting"})
	if err := ctx.CreateTimer(in.Interval).Await(nil); err != nil {
		return nil, err
	}
	return nil, ctx.ContinueAsNew(in)
}

// CheckJob reports the progress of the simulated job from the wall clock.
func CheckJob(_ context.Context, job Job) (JobStatus, error) {
	if job.Duration <= 0 {
		return JobStatus{Progress: 100, Done: true}, nil
	}
	p := int(100 * time.Since(job.StartedAt) / job.Duration)
	if p >= 100 {
		return JobStatus{Progress: 100, Done: true}, nil
	}
	return JobStatus{Progress: max(p, 0)}, nil
}

// Alert stands for a notification (mail, chat message) that the job is done.
func Alert(_ context.Context, message string) (string, error) {
	return "alert sent: " + message, nil
}

// Register registers the orchestrator "Monitor" and its activities.
func Register(rt *durable.Runtime) error {
	if err := rt.RegisterOrchestrator("Monitor", Monitor); err != nil {
		return err
	}
	if err := rt.RegisterActivity("CheckJob", CheckJob); err != nil {
		return err
	}
	return rt.RegisterActivity("Alert", Alert)
}

func main() {
	dir := flag.String("data", "monitor-data", "directory of the task hub (created if missing)")
	jobDuration := flag.Duration("job", 2*time.Second, "how long the simulated job runs")
	interval := flag.Duration("interval", 300*time.Millisecond, "how long the monitor sleeps between checks")
	deadline := flag.Duration("deadline", 10*time.Second, "when the monitor gives up")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in := MonitorInput{
		Job:      Job{ID: "job-" + time.Now().Format("150405"), StartedAt: time.Now(), Duration: *jobDuration},
		Interval: *interval,
		Timeout:  *deadline,
	}
	if err := run(durable.Options{Dir: *dir, Logger: logger}, in, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "monitor:", err)
		os.Exit(1)
	}
}

// run opens a runtime with opts, monitors in.Job and prints what happened to
// out.
func run(opts durable.Options, in MonitorInput, out io.Writer) error {
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
	ctx, cancel := context.WithTimeout(context.Background(), in.Timeout+time.Minute)
	defer cancel()
	client := rt.Client()

	id, err := client.Start(ctx, "Monitor", in)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "started monitor %s for %s (runs %v), checking every %v, deadline in %v\n",
		id, in.Job.ID, in.Job.Duration, in.Interval, in.Timeout)

	// Watch the custom status while the monitor runs. A real client would
	// poll an HTTP status endpoint the same way.
	done := make(chan *durable.Status, 1)
	errc := make(chan error, 1)
	go func() {
		st, err := client.WaitForCompletion(ctx, id)
		if err != nil {
			errc <- err
			return
		}
		done <- st
	}()
	var last string
	show := func(st *durable.Status) {
		if cs := string(st.CustomStatus); cs != last && cs != "" {
			var p Progress
			if json.Unmarshal(st.CustomStatus, &p) == nil {
				fmt.Fprintf(out, "  round %2d: %3d%% %s\n", p.Round, p.Progress, p.State)
			}
			last = cs
		}
	}
	tick := time.NewTicker(in.Interval / 3)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case st := <-done:
			show(st)
			events, err := client.History(ctx, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "status: %s (the last execution's history holds %d events)\n", st.RuntimeStatus, len(events))
			if st.Failure != nil {
				return fmt.Errorf("instance %s failed: %s", id, st.Failure.Error())
			}
			var res MonitorResult
			if err := st.DecodeOutput(&res); err != nil {
				return err
			}
			fmt.Fprintf(out, "result: job %s done=%v at %d%% after %d rounds: %s\n", res.JobID, res.Done, res.Progress, res.Rounds, res.Message)
			return nil
		case <-tick.C:
			st, err := client.Status(ctx, id)
			if err != nil {
				return err
			}
			show(st)
		}
	}
}
